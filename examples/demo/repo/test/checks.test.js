'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { runChecks } = require('../src/checks');

test('runChecks keeps the present items', () => {
  assert.deepStrictEqual(runChecks([1, null, 2, undefined]), [1, 2]);
});
