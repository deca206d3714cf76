// chatd's demo chat (bins/chatd/demo/app.js, served at /demo/app.js): plain JavaScript, no
// framework, no build step. It speaks to chatd exactly as any client would: the REST API under
// /api for the inbox, history, sending and reading, and the /ws WebSocket (docs/realtime.md) for
// the live events, typing and presence, resuming from its last position after a drop.
"use strict";

const $ = (selector) => document.querySelector(selector);

/** Everything the page knows. */
const state = {
  token: null,
  me: null, // our user id, from the `authenticated` event
  chat: null, // the open chat: {type, id, key}
  chats: new Map(), // "user-2" / "topic-7" → {type, id, key, name, unread, preview, time}
  names: new Map(), // user id → username
  presence: new Map(), // user id → "active" | "inactive"
  ws: null,
  live: false, // the socket is authenticated
  since: null, // our user channel's last position
  topics: new Map(), // subscribed topic id → its last position (null until known)
  subscribing: new Map(), // topic id → {promise, resolve} of the pending subscribe
  started: false,
  dropped: false, // the "Drop connection" button is holding the socket closed
  retry: 500, // ms before the next reconnection attempt
  sent: new Map(), // message id → {started, rest, live} timings (ms, performance.now())
  lastRead: new Map(), // chat key → the last message id we asked to mark read
  typingSent: 0,
  typingTimer: null,
};

// ---------------------------------------------------------------------------------------------
// Start: a token from the URL (the test hook), the session, or the sign-in form.

const params = new URLSearchParams(location.search);

function parseChat(text) {
  const match = /^(user|topic)-([0-9]+)$/.exec((text || "").trim());
  return match ? { type: match[1], id: Number(match[2]), key: `${match[1]}-${match[2]}` } : null;
}

async function main() {
  const token = params.get("token") || sessionStorage.getItem("chatd-demo-token");
  if (token) {
    sessionStorage.setItem("chatd-demo-token", token);
    // Keep the token out of the address bar (and so out of bookmarks and screenshots).
    const chat = params.get("chat");
    history.replaceState(null, "", chat ? `?chat=${encodeURIComponent(chat)}` : location.pathname);
    signIn(token);
    return;
  }
  $("#sign-in").hidden = false;
  const form = $("#sign-in-form");
  if (params.get("chat")) form.chat.value = params.get("chat");
  // Development tokens, if this chatd hands them out (404 otherwise).
  const probe = await fetch("token?user=1").catch(() => null);
  const devTokens = probe !== null && probe.ok;
  $("#dev-tokens").hidden = !devTokens;
  $("#paste-token").hidden = devTokens;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chat = parseChat(form.chat.value);
    if (!chat) return showError("Talk to user-N or topic-N");
    let token = form.token.value.trim();
    if (devTokens) {
      const answer = await fetch(`token?user=${encodeURIComponent(form.user.value)}`);
      const body = await answer.json().catch(() => ({}));
      if (!answer.ok) return showError(body.message || answer.statusText);
      token = body.token;
    }
    if (!token) return showError("Paste a token");
    sessionStorage.setItem("chatd-demo-token", token);
    history.replaceState(null, "", `?chat=${chat.key}`);
    params.set("chat", chat.key);
    $("#sign-in").hidden = true;
    signIn(token);
  });
}

function showError(message) {
  $("#sign-in-error").textContent = message;
}

function signIn(token) {
  state.token = token;
  connect();
}

function signOut(message) {
  sessionStorage.removeItem("chatd-demo-token");
  if (state.ws) {
    state.ws.onclose = null;
    state.ws.close();
  }
  const chat = state.chat?.key ?? params.get("chat") ?? "";
  location.replace(message ? `./?chat=${chat}#${encodeURIComponent(message)}` : "./");
}

/** Once authenticated: the inbox, then the chat the URL names (or the most recent one). */
async function start() {
  state.started = true;
  $("#chat").hidden = false;
  $("#drop").hidden = false;
  $("#sign-out").hidden = false;
  $("#me").textContent = `you are ${nameOf(state.me)}`;
  await loadInbox();
  const chat = parseChat(params.get("chat")) || [...state.chats.values()][0];
  if (chat) await openChat(chat.key);
}

// ---------------------------------------------------------------------------------------------
// The WebSocket: authenticate in the first frame, resume `since` our last position.

function connect() {
  if (state.ws) return; // already connected or connecting
  const url = new URL("../ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url);
  state.ws = ws;
  setConnection(state.started ? "reconnecting" : "connecting");
  ws.onopen = () => {
    const data = { token: state.token };
    if (state.since) data.since = state.since;
    send("authenticate", data);
  };
  ws.onmessage = (frame) => {
    const { event, data } = JSON.parse(frame.data);
    receive(event, data || {});
  };
  ws.onclose = (close) => {
    if (state.ws !== ws) return;
    state.ws = null;
    state.live = false;
    state.subscribing.forEach(({ resolve }) => resolve());
    state.subscribing.clear();
    if (close.code === 1008 && close.reason === "unauthorized") return;
    setConnection("offline");
    if (state.dropped) return; // until "Reconnect"
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 5000);
  };
}

function send(event, data) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ event, data }));
}

function setConnection(status) {
  const element = $("#connection");
  element.hidden = false;
  element.dataset.state = status;
  element.textContent = status;
}

function receive(event, data) {
  track(event, data);
  switch (event) {
    case "authenticated":
      return authenticated(data);
    case "unauthorized":
      return signOut(`chatd refused the token: ${data.message}`);
    case "subscribed":
      return subscribed(data);
    case "new-message":
    case "message-updated":
    case "message-seen":
      return message(event, data);
    case "message-deleted":
      return document.querySelector(`[data-id="${data.id}"]`)?.remove();
    case "read":
      return read(data);
    case "typing":
      return typing(data);
    case "presence":
      return presence(data);
    case "error":
      return notify(`chatd: ${data.message}`);
  }
}

/** Keeps the last position of each channel: ours for DM events and reads, a topic's for its own. */
function track(event, data) {
  if (!data.position || event === "authenticated" || event === "subscribed") return;
  if (event !== "read" && data.chat && data.chat.type === "topic") state.topics.set(data.chat.id, data.position);
  else state.since = data.position;
}

async function authenticated(data) {
  const resumed = state.started;
  state.me = data.user;
  state.live = true;
  state.since = data.position;
  state.retry = 500;
  setConnection("live");
  $("#connection").title = `The /ws connection; position ${data.position}`;
  if (!resumed) return start();
  if (data.recovered === false) {
    notify("Reconnected, but too much was missed to replay: reloaded");
    await loadInbox();
    if (state.chat) await openChat(state.chat.key);
  } else if (data.recovered) {
    notify(`Resumed: ${data.missed} missed event${data.missed === 1 ? "" : "s"} replayed`);
  }
  // Topics are heard again only once subscribed again, each from its own last position.
  for (const topic of state.topics.keys()) subscribe(topic);
}

/** Subscribes to a topic (once, however many ask while it is pending); resolves when answered. */
function subscribe(topic) {
  const pending = state.subscribing.get(topic);
  if (pending) return pending.promise;
  const since = state.topics.get(topic);
  if (!state.topics.has(topic)) state.topics.set(topic, null);
  // Not authenticated (yet, or any more): `authenticated` subscribes to every known topic.
  if (!state.live) return Promise.resolve();
  let resolve;
  const promise = new Promise((done) => (resolve = done));
  state.subscribing.set(topic, { promise, resolve });
  send("subscribe", since ? { topic, since } : { topic });
  return promise;
}

async function subscribed(data) {
  state.topics.set(data.topic, data.position);
  state.subscribing.get(data.topic)?.resolve();
  state.subscribing.delete(data.topic);
  if (data.recovered === false && state.chat && state.chat.key === `topic-${data.topic}`) {
    await openChat(state.chat.key);
  }
}

// ---------------------------------------------------------------------------------------------
// REST.

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(`../api/${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error(json.message || `${answer.status} ${answer.statusText}`);
  return json;
}

async function loadInbox() {
  const inbox = await api("GET", "list?per_page=50").catch((error) => notify(error.message));
  if (!inbox) return;
  for (const entry of inbox.entries) {
    const key = `${entry.type}-${entry.id}`;
    const profile = entry.user || entry.topic || {};
    if (entry.user && entry.user.username) state.names.set(entry.id, entry.user.username);
    state.chats.set(key, {
      type: entry.type,
      id: entry.id,
      key,
      name: profile.username || profile.title || key,
      unread: entry.unread,
      preview: entry.latest ? preview(entry.latest) : "",
      time: entry.timestamp.epoch,
    });
    if (entry.type === "topic" && !state.topics.has(entry.id)) subscribe(entry.id);
  }
  renderChats();
}

function chatEntry(chat) {
  let entry = state.chats.get(chat.key);
  if (!entry) {
    const name = chat.type === "user" ? nameOf(chat.id) : chat.key;
    entry = { type: chat.type, id: chat.id, key: chat.key, name, unread: 0, preview: "", time: 0 };
    state.chats.set(chat.key, entry);
  }
  return entry;
}

async function openChat(key) {
  const chat = parseChat(key);
  if (!chat) return notify("Open user-N or topic-N");
  state.chat = chat;
  chatEntry(chat);
  history.replaceState(null, "", `?chat=${chat.key}`);
  $("#title").textContent = state.chats.get(chat.key).name;
  $("#typing").textContent = "";
  state.typingSent = 0;
  const composer = $("#composer");
  composer.message.disabled = false;
  composer.querySelector("button").disabled = false;
  composer.message.placeholder = `Message ${state.chats.get(chat.key).name}`;
  renderPeer();
  renderChats();
  // A topic is heard once subscribed; the history read after that misses nothing.
  if (chat.type === "topic" && state.topics.get(chat.id) == null) await subscribe(chat.id);
  let page;
  try {
    page = await api("GET", `${chat.type}/${chat.id}?per_page=50`);
  } catch (error) {
    return notify(error.message);
  }
  if (state.chat.key !== chat.key) return; // another chat was opened meanwhile
  const list = $("#messages");
  list.replaceChildren();
  for (const item of page.messages) {
    if (item.author && item.author.username) state.names.set(item.author.id, item.author.username);
    show({ ...item, author: item.author.id ?? item.author, chat });
  }
  if (chat.type === "user") {
    if (page.entry && page.entry.username) state.names.set(chat.id, page.entry.username);
    const seen = page.state.read && page.state.read[chat.id];
    if (seen) drawReceipt(seen);
  }
  list.scrollTop = list.scrollHeight;
  composer.message.focus();
  markRead();
}

// ---------------------------------------------------------------------------------------------
// Events.

function message(event, data) {
  const chat = { type: data.chat.type, id: data.chat.id, key: `${data.chat.type}-${data.chat.id}` };
  const open = state.chat && state.chat.key === chat.key;
  const entry = chatEntry(chat);
  if (event === "new-message") {
    entry.preview = preview(data);
    entry.time = data.timestamp.epoch;
    if (data.author !== state.me && !open) entry.unread += 1;
    renderChats();
  }
  if (open) {
    show(data);
    if (data.author !== state.me) {
      $("#typing").textContent = "";
      markRead();
    }
  }
  if (event === "message-seen" && data.author === state.me && chat.type === "user" && open) drawReceipt(data.id);
  if (event === "new-message" && data.author === state.me) {
    // Our own message back over /ws: the end of its round trip (possibly before the POST's answer).
    const timing = state.sent.get(data.id) || {};
    timing.live ??= performance.now();
    state.sent.set(data.id, timing);
    renderTimings(data.id);
  }
}

function read(data) {
  const key = `${data.chat.type}-${data.chat.id}`;
  if (data.user === state.me) {
    // Ours, from any of our devices: the chat's unread count, exact.
    if (data.unread !== undefined && state.chats.has(key)) {
      state.chats.get(key).unread = data.unread;
      renderChats();
    }
  } else if (state.chat && state.chat.key === key) {
    drawReceipt(data.message); // the other side read up to there: the read receipt
  }
}

function typing(data) {
  const key = `${data.chat.type}-${data.chat.id}`;
  if (!state.chat || state.chat.key !== key || data.user === state.me) return;
  const element = $("#typing");
  element.textContent = `${nameOf(data.user)} is typing…`;
  clearTimeout(element.timer);
  // chatd sends no "stopped typing": the indicator lasts a few seconds after the last one.
  element.timer = setTimeout(() => (element.textContent = ""), 4000);
}

function presence(data) {
  state.presence.set(data.user, data.status);
  renderChats();
  renderPeer();
}

// ---------------------------------------------------------------------------------------------
// Sending, typing, reading.

$("#composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = event.target.message;
  const text = input.value.trim();
  if (!text || !state.chat) return;
  input.value = "";
  state.typingSent = 0; // what is typed next is news again
  const chat = state.chat;
  const pending = show({ id: null, author: state.me, text, chat, timestamp: { epoch: Date.now() } });
  pending.classList.add("pending");
  const started = performance.now();
  let answer;
  try {
    answer = await api("POST", `${chat.type}/${chat.id}`, { type: "text", text });
  } catch (error) {
    pending.classList.replace("pending", "failed");
    pending.querySelector(".timing").textContent = `not sent: ${error.message}`;
    return;
  }
  const id = answer.entry.id;
  const timing = state.sent.get(id) || {};
  state.sent.set(id, { ...timing, started, rest: performance.now() });
  // The event may have come back over /ws before the POST's answer: keep that one.
  if (document.querySelector(`[data-id="${id}"]`)) pending.remove();
  else {
    pending.dataset.id = id;
    pending.classList.remove("pending");
  }
  renderTimings(id);
});

$("#composer").message.addEventListener("input", () => {
  const now = Date.now();
  if (!state.chat || !state.live || now - state.typingSent < 2000) return;
  state.typingSent = now;
  send("typing", { chat: { type: state.chat.type, id: state.chat.id } });
});

$("#open-chat").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = event.target.chat;
  if (parseChat(input.value)) openChat(parseChat(input.value).key);
  input.value = "";
});

/** Marks the open chat read up to the newest message of someone else, if the page is seen. */
function markRead() {
  const chat = state.chat;
  if (!chat || document.hidden) return;
  const last = [...document.querySelectorAll("#messages .theirs[data-id]")].pop();
  if (!last || state.lastRead.get(chat.key) === last.dataset.id) return;
  state.lastRead.set(chat.key, last.dataset.id);
  api("POST", `${chat.type}/${chat.id}/read`, { message: last.dataset.id }).catch((error) => notify(error.message));
}

document.addEventListener("visibilitychange", markRead);

$("#drop").addEventListener("click", (event) => {
  // A network drop on demand: the socket closes, and what happens meanwhile is replayed when the
  // page reconnects `since` its last position.
  state.dropped = !state.dropped;
  event.target.textContent = state.dropped ? "Reconnect" : "Drop connection";
  if (!state.dropped) return connect();
  const ws = state.ws;
  state.ws = null;
  state.live = false;
  if (ws) {
    ws.onclose = null;
    ws.close(4000, "dropped by the demo");
  }
  state.subscribing.forEach(({ resolve }) => resolve());
  state.subscribing.clear();
  setConnection("offline");
  notify("Offline: send from the other window, then reconnect");
});

$("#sign-out").addEventListener("click", () => signOut());

// ---------------------------------------------------------------------------------------------
// Drawing.

function nameOf(user) {
  return state.names.get(user) || `user-${user}`;
}

function preview(item) {
  return item.type === "image" ? "[image]" : item.text;
}

/** Shows a message in the open chat (or updates it in place); returns its row. */
function show(item) {
  const list = $("#messages");
  let row = item.id ? list.querySelector(`[data-id="${item.id}"]`) : null;
  if (!row) {
    row = document.createElement("li");
    row.className = `entry ${item.author === state.me ? "mine" : "theirs"}`;
    if (item.id) row.dataset.id = item.id;
    row.innerHTML = '<span class="author"></span><div class="message"></div><div class="meta"><time></time><span class="timing"></span></div>';
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    list.append(row);
    if (nearBottom || item.author === state.me) list.scrollTop = list.scrollHeight;
    if (item.id) renderTimings(item.id);
  }
  row.querySelector(".author").textContent = item.chat.type === "topic" && item.author !== state.me ? nameOf(item.author) : "";
  row.querySelector(".message").textContent = item.type === "image" ? `[image] ${JSON.stringify(item.image)}` : item.text;
  const time = row.querySelector("time");
  if (item.timestamp) {
    const date = new Date(item.timestamp.epoch);
    time.dateTime = date.toISOString();
    time.textContent = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  return row;
}

/** The round trip of a message we sent: the POST's answer, and the message back over /ws. */
function renderTimings(id) {
  const timing = state.sent.get(id);
  const element = document.querySelector(`[data-id="${id}"] .timing`);
  if (!timing || !element || timing.started === undefined) return;
  const parts = [];
  if (timing.live !== undefined) parts.push(`round trip ${Math.round(timing.live - timing.started)} ms`);
  if (timing.rest !== undefined) parts.push(`POST answered in ${Math.round(timing.rest - timing.started)} ms`);
  element.textContent = parts.join(" · ");
  element.title = "Round trip: from Send until the message came back over /ws. POST: until the REST API answered.";
}

/** "Seen" under our last message at or before `id`, the other side's read position. */
function drawReceipt(id) {
  const rows = [...document.querySelectorAll("#messages .entry[data-id]")];
  const upTo = rows.findIndex((row) => row.dataset.id === id);
  if (upTo < 0) return;
  const mine = rows.slice(0, upTo + 1).filter((row) => row.classList.contains("mine")).pop();
  if (!mine) return;
  document.querySelectorAll("#messages .receipt").forEach((receipt) => receipt.remove());
  const receipt = document.createElement("span");
  receipt.className = "receipt";
  receipt.textContent = "Seen";
  mine.querySelector(".meta").append(receipt);
}

function renderChats() {
  const list = $("#chat-list");
  const chats = [...state.chats.values()].sort((a, b) => b.time - a.time);
  list.replaceChildren(
    ...chats.map((chat) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "chat-link";
      button.dataset.chat = chat.key;
      if (state.chat && state.chat.key === chat.key) button.setAttribute("aria-current", "true");
      const status = chat.type === "user" ? state.presence.get(chat.id) || "inactive" : "topic";
      button.innerHTML = '<span class="dot"></span><span class="name"></span><span class="unread"></span><span class="preview"></span>';
      button.querySelector(".dot").dataset.status = status;
      button.querySelector(".dot").title = status === "topic" ? "a topic" : status === "active" ? "online" : "offline";
      button.querySelector(".name").textContent = chat.type === "topic" ? `# ${chat.name}` : chat.name;
      button.querySelector(".unread").textContent = chat.unread > 0 ? String(chat.unread) : "";
      button.querySelector(".preview").textContent = chat.preview;
      button.addEventListener("click", () => openChat(chat.key));
      item.append(button);
      return item;
    }),
  );
  const unread = chats.reduce((sum, chat) => sum + chat.unread, 0);
  document.title = unread > 0 ? `(${unread}) chatd demo` : "chatd demo";
}

function renderPeer() {
  const peer = $("#peer");
  if (!state.chat || state.chat.type !== "user") {
    peer.textContent = state.chat ? "topic" : "";
    peer.dataset.status = "topic";
    return;
  }
  const status = state.presence.get(state.chat.id) || "inactive";
  peer.dataset.status = status;
  peer.textContent = status === "active" ? "online" : "offline";
}

let noticeTimer;
function notify(text) {
  const notice = $("#notice");
  notice.textContent = text;
  notice.classList.add("shown");
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => notice.classList.remove("shown"), 5000);
}

window.addEventListener("offline", () => state.ws && state.ws.close(4001, "offline"));
window.addEventListener("online", () => {
  if (!state.ws && state.token && !state.dropped) connect();
});
if (location.hash.length > 1) showError(decodeURIComponent(location.hash.slice(1)));

main();
