// chat-bench's Node.js reference for the realtime scenario: what a platform would otherwise run —
// a Socket.IO v4 server with @socket.io/redis-adapter on the same Redis — doing the least that the
// scenario asks. Sockets authenticate with the token in the CONNECT packet's `auth` (HS256, as
// chatd checks it), join their user's room and hear `authenticated`; `POST /api/user/:id` (token
// in `x-auth-token`) emits `new-message` to that user's room through the adapter. Nothing is stored.
//
// Usage: node server.js PORT REDIS_PORT SECRET
"use strict";

const http = require("node:http");
const { randomUUID } = require("node:crypto");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");
const jwt = require("jsonwebtoken");

const [port, redisPort, secret] = process.argv.slice(2);

function userOf(token) {
  const claims = jwt.verify(String(token), secret, { algorithms: ["HS256"] });
  return claims.user_id;
}

async function main() {
  const publisher = createClient({ url: `redis://127.0.0.1:${redisPort}` });
  const subscriber = publisher.duplicate();
  await Promise.all([publisher.connect(), subscriber.connect()]);

  const server = http.createServer((request, response) => {
    const target = /^\/api\/user\/(\d+)$/.exec(request.url);
    if (request.method !== "POST" || !target) {
      response.writeHead(404).end();
      return;
    }
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      let author;
      try {
        author = userOf(request.headers["x-auth-token"]);
      } catch {
        response.writeHead(401).end();
        return;
      }
      const sent = JSON.parse(body);
      const entry = { id: randomUUID(), author, type: "text", text: sent.text, timestamp: new Date().toISOString() };
      io.to(`user:${target[1]}`).emit("new-message", entry);
      response.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ entry }));
    });
  });

  const io = new Server(server, { adapter: createAdapter(publisher, subscriber), transports: ["websocket"] });
  io.use((socket, next) => {
    try {
      socket.data.user = userOf(socket.handshake.auth.token);
      next();
    } catch {
      next(new Error("unauthorized"));
    }
  });
  io.on("connection", (socket) => {
    socket.join(`user:${socket.data.user}`);
    socket.emit("authenticated", { user: socket.data.user });
  });
  server.listen(Number(port), "127.0.0.1");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
