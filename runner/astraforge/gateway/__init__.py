"""The gateway: the sandbox's only door to the outside.

Started per run on the runner, it holds the real model key and gives the sandbox a per-run
token (:mod:`~astraforge.gateway.endpoint`), meters every call against the run's budget
(:mod:`~astraforge.gateway.meter`), and lets HTTP(S) out only to the hosts on the allow list
(:mod:`~astraforge.gateway.proxy`). Inside the sandbox it is reached on a loopback address
through a small static forwarder that shares only the sandbox's network namespace
(:mod:`~astraforge.gateway.forwarder`, :mod:`~astraforge.gateway.tunnel`).
"""
