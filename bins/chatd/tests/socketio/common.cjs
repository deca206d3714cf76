// What the socket.io-client scripts share: chatd's address and the two users' tokens from the
// environment (CHATD_URL, TOKEN_1, TOKEN_2), waiting for one event, calling the REST API, setting
// positions aside, and running a script's checks to a clear exit code.
"use strict";

const assert = require("node:assert/strict");

const url = process.env.CHATD_URL;
const tokens = { 1: process.env.TOKEN_1, 2: process.env.TOKEN_2 };

// The next `event` on `emitter` (a socket, or its engine), or an error after `ms`.
function once(emitter, event, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    emitter.once(event, (data) => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}

// A REST request as `user`; its JSON answer, which must be a success.
async function rest(user, method, path, body) {
  const response = await fetch(url + path, {
    method,
    headers: { "X-Auth-Token": tokens[user], "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  assert.ok(response.ok, `${method} ${path}: ${JSON.stringify(json)}`);
  return json;
}

// `data` without its `position`, which must be one (`<epoch>-<seq>`): for comparing the rest.
function withoutPosition(data) {
  const { position, ...rest } = data;
  assert.match(position, /^[0-9]+-[0-9]+$/, `a position in ${JSON.stringify(data)}`);
  return rest;
}

// Resuming: user 2 sends user 1 a message, then user 1 comes back with `connectSince(position)`
// (`position` being the last event it had) and gets exactly that message, after `authenticated`
// says that one event was recovered.
async function checkResume(connectSince, position) {
  await rest(2, "POST", "/api/user/1", { type: "text", text: "while away" });
  const socket = connectSince(position);
  const missed = once(socket, "new-message");
  const resumed = await once(socket, "authenticated");
  assert.deepEqual([resumed.recovered, resumed.missed], [true, 1]);
  const event = await missed;
  assert.equal(event.text, "while away");
  assert.equal(event.position, resumed.position);
}

// Runs `checks`, then closes `sockets` and exits 0 saying `passed`; exits 1 on any failure.
function run(checks, sockets, passed) {
  checks()
    .then(() => {
      sockets.forEach((socket) => socket.close());
      console.log(passed);
      process.exit(0);
    })
    .catch((error) => {
      console.error(error);
      process.exit(1);
    });
}

module.exports = { url, tokens, once, rest, run, withoutPosition, checkResume };
