/* astraforge-forward: the gateway's door inside a sandbox.
 *
 * Listens on ADDR:PORT for each PORT given, and carries every accepted connection over
 * stdin/stdout to the runner as frames: type (1 byte), connection id (4 bytes, big
 * endian), length (4 bytes, big endian), payload. It needs nothing from the sandbox's image
 * (built static) and runs outside the sandbox's processes, sharing only its network.
 *
 *   out: READY(0) once listening; OPEN(1, payload: port index); DATA(2); CLOSE(3) at EOF
 *   in:  DATA(2) to write to a connection; CLOSE(3) to close it
 *
 * stdin at EOF ends the forwarder (the runner is gone).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { READY = 0, OPEN = 1, DATA = 2, CLOSE = 3 };
#define MAX_PORTS 8
#define MAX_CONNS 256
#define CHUNK 65536

struct conn { int fd; uint32_t id; int reading; };
static struct conn conns[MAX_CONNS];
static unsigned char buf[CHUNK + 9];

static int write_all(int fd, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static void put32(unsigned char *p, uint32_t v) {
  p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void frame(int type, uint32_t id, const unsigned char *data, uint32_t n) {
  unsigned char head[9];
  head[0] = (unsigned char)type;
  put32(head + 1, id);
  put32(head + 5, n);
  if (write_all(1, head, 9) < 0 || (n && write_all(1, data, n) < 0)) exit(0);
}

static struct conn *find(uint32_t id) {
  for (int i = 0; i < MAX_CONNS; i++)
    if (conns[i].fd >= 0 && conns[i].id == id) return &conns[i];
  return NULL;
}

static void drop(struct conn *c) {
  close(c->fd);
  c->fd = -1;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc - 2 > MAX_PORTS) {
    fprintf(stderr, "usage: %s ADDR PORT [PORT...]\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int nports = argc - 2, listeners[MAX_PORTS];
  for (int i = 0; i < nports; i++) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(argv[i + 2]));
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
      fprintf(stderr, "astraforge-forward: bad address %s\n", argv[1]);
      return 2;
    }
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0) {
      perror("astraforge-forward: listen");
      return 1;
    }
    listeners[i] = fd;
  }
  for (int i = 0; i < MAX_CONNS; i++) conns[i].fd = -1;
  frame(READY, 0, NULL, 0);
  uint32_t next_id = 1;
  struct pollfd fds[1 + MAX_PORTS + MAX_CONNS];
  int owner[1 + MAX_PORTS + MAX_CONNS];
  for (;;) {
    int n = 0;
    fds[n].fd = 0; fds[n].events = POLLIN; owner[n++] = -1;
    for (int i = 0; i < nports; i++) {
      fds[n].fd = listeners[i]; fds[n].events = POLLIN; owner[n++] = -2 - i;
    }
    for (int i = 0; i < MAX_CONNS; i++)
      if (conns[i].fd >= 0 && conns[i].reading) {
        fds[n].fd = conns[i].fd; fds[n].events = POLLIN; owner[n++] = i;
      }
    if (poll(fds, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    for (int k = 0; k < n; k++) {
      if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (owner[k] == -1) {
        unsigned char head[9];
        if (read_all(0, head, 9) < 0) return 0;
        uint32_t id = get32(head + 1), len = get32(head + 5);
        if (len > CHUNK || read_all(0, buf, len) < 0) return 0;
        struct conn *c = find(id);
        if (c == NULL) continue;
        if (head[0] == DATA) {
          if (write_all(c->fd, buf, len) < 0) { drop(c); frame(CLOSE, id, NULL, 0); }
        } else if (head[0] == CLOSE) {
          drop(c);
        }
        break; /* the connection table may have changed: poll again */
      } else if (owner[k] <= -2) {
        int fd = accept4(fds[k].fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        struct conn *slot = NULL;
        for (int i = 0; i < MAX_CONNS && !slot; i++)
          if (conns[i].fd < 0) slot = &conns[i];
        if (!slot) { close(fd); continue; }
        slot->fd = fd; slot->id = next_id++; slot->reading = 1;
        unsigned char index = (unsigned char)(-2 - owner[k]);
        frame(OPEN, slot->id, &index, 1);
      } else {
        struct conn *c = &conns[owner[k]];
        if (c->fd < 0) continue;
        ssize_t r = read(c->fd, buf, CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r > 0) {
          frame(DATA, c->id, buf, (uint32_t)r);
        } else {
          c->reading = 0; /* the client is done sending: the reply may still come */
          frame(CLOSE, c->id, NULL, 0);
          if (r < 0) drop(c);
        }
      }
    }
  }
}
