// A real socket.io-client v4 against chatd: both transports (polling with upgrade, WebSocket only,
// polling only), both ways to authenticate, acks, and every event, presence included. Run by tests/api/socketio_client.rs
// with CHATD_URL, TOKEN_1, TOKEN_2 and SOCKET_IO_CLIENT (the module's path) in the environment.
"use strict";

const assert = require("node:assert/strict");
const { url, tokens, once, rest, run, withoutPosition, checkResume } = require("./common.cjs");
const { io } = require(process.env.SOCKET_IO_CLIENT);

const sockets = [];


function connect(options) {
  const socket = io(url, { reconnection: false, ...options });
  sockets.push(socket);
  return socket;
}


async function main() {
  // User 1: default options (long-polling, then the upgrade to WebSocket), token in the handshake.
  const one = connect({ auth: { token: tokens[1] } });
  const upgraded = new Promise((resolve) => one.io.on("open", () => one.io.engine.once("upgrade", resolve)));
  assert.equal((await once(one, "authenticated")).user, 1);
  await upgraded;
  assert.equal(one.io.engine.transport.name, "websocket");
  console.log("ok: polling + upgrade, handshake auth");

  // User 2: WebSocket only, the original's authenticate event, then an ack.
  const two = connect({ transports: ["websocket"] });
  await once(two, "connect");
  two.emit("authenticate", { token: tokens[2] });
  assert.equal((await once(two, "authenticated")).user, 2);
  assert.deepEqual(withoutPosition(await two.emitWithAck("subscribe", { topic: 77 })), { topic: 77 });
  // A refusal's ack: the message as it always was, and its code.
  assert.deepEqual(await two.emitWithAck("subscribe", { topic: "x" }), {
    error: 'expected {"topic": <positive integer>}',
    code: "invalid_payload",
  });
  console.log("ok: websocket only, authenticate event, acks");

  // User 2 again, long-polling only.
  const twoPolling = connect({ transports: ["polling"], auth: { token: tokens[2] } });
  await once(twoPolling, "authenticated");

  // A DM reaches the recipient on both its connections and the sender's own device.
  const heard = [once(two, "new-message"), once(twoPolling, "new-message"), once(one, "new-message")];
  const sent = (await rest(1, "POST", "/api/user/2", { type: "text", text: "hello from node" })).entry;
  const [toTwo, toTwoPolling, toOne] = await Promise.all(heard);
  assert.equal(toTwo.id, sent.id);
  assert.deepEqual(toTwo.chat, { type: "user", id: 1 });
  assert.equal(toTwoPolling.text, "hello from node");
  assert.deepEqual(toOne.chat, { type: "user", id: 2 });
  console.log("ok: new-message to every device");

  // Every participant's connection hears each change; wait for all of them each time, so that no
  // event is left over for the next step.
  const everyone = (event) => Promise.all([two, twoPolling, one].map((socket) => once(socket, event)));
  const updated = everyone("message-updated");
  await rest(1, "POST", `/api/user/2/${sent.id}`, { text: "edited" });
  assert.deepEqual((await updated).map((m) => m.text), ["edited", "edited", "edited"]);
  const seen = everyone("message-seen");
  await rest(2, "POST", `/api/user/1/${sent.id}`, { status: "seen" });
  assert.deepEqual((await seen).map((m) => m.status), ["seen", "seen", "seen"]);
  const deleted = everyone("message-deleted");
  await rest(1, "DELETE", `/api/user/2/${sent.id}`);
  const [deletedForTwo, , deletedForOne] = await deleted;
  assert.deepEqual(withoutPosition(deletedForTwo), { id: sent.id, chat: { type: "user", id: 1 } });
  assert.deepEqual(withoutPosition(deletedForOne), { id: sent.id, chat: { type: "user", id: 2 } });
  console.log("ok: message-updated, message-seen, message-deleted");

  const topic = once(two, "new-message");
  await rest(1, "POST", "/api/topic/77", { type: "text", text: "topic post" });
  assert.deepEqual((await topic).chat, { type: "topic", id: 77 });
  const typing = once(two, "typing");
  one.emit("typing", { chat: { type: "user", id: 2 } });
  assert.deepEqual(await typing, { chat: { type: "user", id: 1 }, user: 1 });
  console.log("ok: topics and typing");

  // Presence: users 1 and 2 now share a DM; when user 2's last connection closes, user 1 hears it.
  const gone = once(one, "presence");
  two.close();
  twoPolling.close();
  assert.deepEqual(await gone, { user: 2, status: "inactive" });
  const back = once(one, "presence");
  const twoAgain = connect({ transports: ["websocket"], auth: { token: tokens[2] } });
  const authenticatedAgain = once(twoAgain, "authenticated");
  assert.deepEqual(await back, { user: 2, status: "active" });
  await authenticatedAgain;
  console.log("ok: presence");

  // Resuming in the handshake's auth.
  const resumeAuth = (since) => connect({ transports: ["websocket"], auth: { token: tokens[1], since } });
  await checkResume(resumeAuth, deletedForOne.position);
  console.log("ok: resume since a position");

  // Refusals: a bad handshake token is a connect_error; a bad authenticate event is `unauthorized`.
  const forged = connect({ auth: { token: "forged" } });
  const refused = await once(forged, "connect_error");
  assert.equal(refused.data.code, "invalid_token");
  // WebSocket only: a session the server ends while the client is still upgrading from polling
  // can lose its last packets (the client ignores a probe's packets until it has switched).
  const late = connect({ transports: ["websocket"] });
  await once(late, "connect");
  // Both arrive together: listen for both before asking.
  const unauthorized = once(late, "unauthorized");
  const disconnected = once(late, "disconnect");
  late.emit("authenticate", { token: "forged" });
  assert.equal((await unauthorized).data.type, "UnauthorizedError");
  assert.equal(await disconnected, "io server disconnect");
  console.log("ok: refusals");
}

run(main, sockets, "all socket.io-client checks passed");
