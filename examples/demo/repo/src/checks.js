'use strict';

function runChecks(items) {
  return items.filter((item) => heck(item));
}

function check(item) {
  return item !== null && item !== undefined;
}

module.exports = { runChecks, check };
