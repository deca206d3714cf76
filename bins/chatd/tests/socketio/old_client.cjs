// The original service's clients against chatd: a real socket.io-client 1.x or 2.x (Engine.IO v3,
// Socket.IO protocol 4), in every transport (polling with upgrade, WebSocket only, polling only),
// both ways to authenticate (`query: {token}` and the `authenticate` event), acks, every event,
// non-ASCII text both ways, the client-driven heartbeat, and the refusals. Run by
// tests/api/socketio_client.rs with CHATD_URL, TOKEN_1, TOKEN_2, SOCKET_IO_CLIENT (the module's
// path) and CLIENT_NAME (for the log) in the environment.
"use strict";

const assert = require("node:assert/strict");
const { url, tokens, once, rest, run, withoutPosition, checkResume } = require("./common.cjs");
const io = require(process.env.SOCKET_IO_CLIENT);

const name = process.env.CLIENT_NAME;
const sockets = [];
// Text from outside the Basic Multilingual Plane too: an emoji is two UTF-16 code units and four
// UTF-8 bytes, which is where v3 polling framings differ.
const hello = "héllo 👋 世界";

// socket.io-client 1.x and 2.x have no emitWithAck: the ack is a callback.
function emitWithAck(socket, event, data, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack to '${event}' within ${ms} ms`)), ms);
    socket.emit(event, data, (answer) => {
      clearTimeout(timer);
      resolve(answer);
    });
  });
}

function connect(options, path = "") {
  const socket = io(url + path, { forceNew: true, reconnection: false, ...options });
  sockets.push(socket);
  return socket;
}


async function main() {
  // User 1: the default transports (long-polling, then the upgrade), the token in the query.
  const one = connect({ query: { token: tokens[1] } });
  const upgraded = once(one.io.engine, "upgrade");
  assert.equal((await once(one, "authenticated")).user, 1);
  await upgraded;
  assert.equal(one.io.engine.transport.name, "websocket");
  console.log(`ok ${name}: polling + upgrade, token in the query`);

  // User 2: WebSocket only, the original's authenticate event, then an ack.
  const two = connect({ transports: ["websocket"] });
  await once(two, "connect");
  assert.deepEqual(await emitWithAck(two, "subscribe", { topic: 1 }), { error: "authenticate first", code: "authenticate_first" });
  two.emit("authenticate", { token: tokens[2] });
  assert.equal((await once(two, "authenticated")).user, 2);
  assert.deepEqual(withoutPosition(await emitWithAck(two, "subscribe", { topic: 77 })), { topic: 77 });
  console.log(`ok ${name}: websocket only, authenticate event, acks`);

  // User 2 again, long-polling only, with the authenticate event and its ack.
  const twoPolling = connect({ transports: ["polling"] });
  await once(twoPolling, "connect");
  const pollingAuthenticated = once(twoPolling, "authenticated");
  assert.deepEqual(withoutPosition(await emitWithAck(twoPolling, "authenticate", { token: tokens[2] })), { user: 2 });
  await pollingAuthenticated;
  assert.equal(twoPolling.io.engine.transport.name, "polling");
  // Client to server and back over polling: the error names the event exactly as sent.
  assert.deepEqual(await emitWithAck(twoPolling, "dänce 👋", {}), {
    error: 'unknown event "dänce 👋"',
    code: "unknown_event",
  });
  console.log(`ok ${name}: polling only, non-ASCII both ways`);

  // A DM reaches the recipient on both its connections and the sender's own device.
  const heard = [once(two, "new-message"), once(twoPolling, "new-message"), once(one, "new-message")];
  const sent = (await rest(1, "POST", "/api/user/2", { type: "text", text: hello })).entry;
  const [toTwo, toTwoPolling, toOne] = await Promise.all(heard);
  assert.equal(toTwo.id, sent.id);
  assert.deepEqual(toTwo.chat, { type: "user", id: 1 });
  assert.deepEqual([toTwo.text, toTwoPolling.text, toOne.text], [hello, hello, hello]);
  assert.deepEqual(toOne.chat, { type: "user", id: 2 });
  console.log(`ok ${name}: new-message to every device`);

  // Every participant's connection hears each change; wait for all of them each time, so that no
  // event is left over for the next step.
  const everyone = (event) => Promise.all([two, twoPolling, one].map((socket) => once(socket, event)));
  const updated = everyone("message-updated");
  await rest(1, "POST", `/api/user/2/${sent.id}`, { text: "édité ✨" });
  assert.deepEqual((await updated).map((m) => m.text), ["édité ✨", "édité ✨", "édité ✨"]);
  const seen = everyone("message-seen");
  await rest(2, "POST", `/api/user/1/${sent.id}`, { status: "seen" });
  assert.deepEqual((await seen).map((m) => m.status), ["seen", "seen", "seen"]);
  const deleted = everyone("message-deleted");
  await rest(1, "DELETE", `/api/user/2/${sent.id}`);
  const [deletedForTwo, , deletedForOne] = await deleted;
  assert.deepEqual(withoutPosition(deletedForTwo), { id: sent.id, chat: { type: "user", id: 1 } });
  assert.deepEqual(withoutPosition(deletedForOne), { id: sent.id, chat: { type: "user", id: 2 } });
  console.log(`ok ${name}: message-updated, message-seen, message-deleted`);

  const topic = once(two, "new-message");
  await rest(1, "POST", "/api/topic/77", { type: "text", text: "topic post" });
  assert.deepEqual((await topic).chat, { type: "topic", id: 77 });
  const typing = [once(two, "typing"), once(twoPolling, "typing")];
  assert.deepEqual(await emitWithAck(one, "typing", { chat: { type: "user", id: 2 } }), { ok: true });
  for (const heardTyping of await Promise.all(typing)) {
    assert.deepEqual(heardTyping, { chat: { type: "user", id: 1 }, user: 1 });
  }
  console.log(`ok ${name}: topics and typing`);

  // The heartbeat is the client's in Engine.IO v3: each transport's pings are answered.
  await Promise.all([one, two, twoPolling].map((socket) => once(socket, "pong")));
  console.log(`ok ${name}: client pings answered`);

  // Presence: users 1 and 2 now share a DM; when user 2's last connection closes, user 1 hears it.
  const gone = once(one, "presence");
  two.close();
  twoPolling.close();
  assert.deepEqual(await gone, { user: 2, status: "inactive" });
  const back = once(one, "presence");
  const twoAgain = connect({ transports: ["websocket"], query: { token: tokens[2] } });
  const authenticatedAgain = once(twoAgain, "authenticated");
  assert.deepEqual(await back, { user: 2, status: "active" });
  await authenticatedAgain;
  console.log(`ok ${name}: presence`);

  // Resuming in the query, as these clients can.
  const resumeQuery = (since) => connect({ transports: ["websocket"], query: { token: tokens[1], since } });
  await checkResume(resumeQuery, deletedForOne.position);
  console.log(`ok ${name}: resume since a position`);


  // Refusals. A bad token in the query: socket.io 2.x's error packet with socketio-jwt's data.
  const forged = connect({ query: { token: "forged" } });
  const refused = await once(forged, "error");
  assert.equal(refused.code, "invalid_token");
  assert.equal(refused.type, "UnauthorizedError");
  // A bad authenticate event: `unauthorized`, then the server's disconnect.
  const late = connect({ transports: ["websocket"] });
  await once(late, "connect");
  const unauthorized = once(late, "unauthorized");
  const disconnected = once(late, "disconnect");
  late.emit("authenticate", { token: "forged" });
  assert.equal((await unauthorized).data.type, "UnauthorizedError");
  assert.equal(await disconnected, "io server disconnect");
  // A token that is not a string, over polling: socketio-jwt's words.
  const wrongType = connect({ transports: ["polling"] });
  await once(wrongType, "connect");
  const typeRefused = once(wrongType, "unauthorized");
  wrongType.emit("authenticate", { token: 42 });
  assert.equal((await typeRefused).message, "invalid token datatype");
  // Another namespace than "/".
  const admin = connect({ transports: ["websocket"] }, "/admin");
  assert.equal(await once(admin, "error"), "Invalid namespace");
  console.log(`ok ${name}: refusals`);
}

run(main, sockets, `all ${name} checks passed`);
