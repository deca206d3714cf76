// The demo chat (/demo/) in a real browser: two pages, as users 1 and 2, chat with each other.
// Run by tests/api/demo.rs with puppeteer-core (PUPPETEER_CORE) connected to the test binary's
// Chromium (BROWSER_ENDPOINT), against a chatd at CHATD_URL, with TOKEN_1 and TOKEN_2; keeps a
// screenshot of each page in SCREENSHOT_DIR. Every check waits for a signal in the page (never a
// fixed time) and fails after the page's default timeout.
"use strict";

const puppeteer = require(process.env.PUPPETEER_CORE);
const path = require("path");

const url = process.env.CHATD_URL;
const screenshots = process.env.SCREENSHOT_DIR;

function step(what) {
  console.log(`- ${what}`);
}

/** A page of its own browser context (its own storage), signed in through the test hook. */
async function open(browser, token, chat) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  await page.setViewport({ width: 900, height: 560 });
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.errors = errors;
  await page.goto(`${url}/demo/?token=${token}&chat=${chat}`);
  await page.waitForSelector('#connection[data-state="live"]');
  await page.waitForSelector("form [name=message]:not([disabled])");
  return page;
}

/** Waits until a `.message` holding exactly `text` is shown. */
function messageShown(page, text) {
  return page.waitForFunction(
    (text) => [...document.querySelectorAll(".message")].some((message) => message.textContent === text),
    {},
    text,
  );
}

/** Types `text` into the message box and sends it with Enter. */
async function say(page, text) {
  await page.type("form [name=message]", text);
  await page.keyboard.press("Enter");
  await messageShown(page, text);
}

/** Waits until our message `text` carries the "Seen" receipt. */
function seen(page, text) {
  return page.waitForFunction(
    (text) =>
      [...document.querySelectorAll(".entry.mine")].some(
        (row) => row.querySelector(".message").textContent === text && row.querySelector(".receipt"),
      ),
    {},
    text,
  );
}

/** Opens a chat from the list on the left. */
async function openChat(page, key) {
  await page.click(`[data-chat="${key}"]`);
  await page.waitForSelector(`[data-chat="${key}"][aria-current="true"]`);
}

async function main() {
  const browser = await puppeteer.connect({ browserWSEndpoint: process.env.BROWSER_ENDPOINT });
  try {
    step("user 1 opens the DM with user 2, user 2 opens topic 7");
    const one = await open(browser, process.env.TOKEN_1, "user-2");
    const two = await open(browser, process.env.TOKEN_2, "topic-7");
    await messageShown(one, "Hey, are you there?"); // sent by user 2 before the pages opened

    step("presence: each sees the other online");
    await one.waitForSelector('#peer[data-status="active"]');
    await two.waitForSelector('[data-chat="user-1"] .dot[data-status="active"]');

    step("user 1 sends; user 2, in another chat, gets an unread count");
    await say(one, "Yes! Hello from user 1");
    await two.waitForFunction(() => document.querySelector('[data-chat="user-1"] .unread')?.textContent === "1");
    await one.waitForFunction(() => /round trip \d+ ms/.test(document.querySelector(".entry.mine:last-child .timing").textContent));

    step("user 2 opens the DM: the message is there, the count goes, user 1 sees the read receipt");
    await openChat(two, "user-1");
    await messageShown(two, "Yes! Hello from user 1");
    await two.waitForFunction(() => document.querySelector('[data-chat="user-1"] .unread')?.textContent === "");
    await seen(one, "Yes! Hello from user 1");

    step("typing: user 2 types, user 1 sees it");
    await two.type("form [name=message]", "Hi user 1");
    await one.waitForFunction(() => document.querySelector("#typing").textContent === "user-2 is typing…");
    await two.keyboard.press("Enter");
    await messageShown(one, "Hi user 1");
    await one.waitForFunction(() => document.querySelector("#typing").textContent === "");

    step("a topic: user 1 opens topic 7 and posts; user 2 sees it there");
    await one.type("#open-chat [name=chat]", "topic-7");
    await one.keyboard.press("Enter");
    await one.waitForSelector('[data-chat="topic-7"][aria-current="true"]');
    await openChat(two, "topic-7");
    await say(one, "Hello, topic 7");
    await messageShown(two, "Hello, topic 7");
    await two.waitForFunction(() =>
      [...document.querySelectorAll(".entry.theirs .author")].some((author) => author.textContent === "user-1"),
    );

    step("resume: user 2 drops the connection, user 1 sends, user 2 reconnects and gets it");
    await openChat(one, "user-2");
    await openChat(two, "user-1");
    await two.click("#drop");
    await two.waitForSelector('#connection[data-state="offline"]');
    await say(one, "Sent while you were offline");
    await two.click("#drop");
    await two.waitForSelector('#connection[data-state="live"]');
    await messageShown(two, "Sent while you were offline");
    await two.waitForFunction(() => /[1-9]\d* missed events? replayed/.test(document.querySelector("#notice").textContent));
    await seen(one, "Sent while you were offline");

    step("screenshots, with user 1 typing");
    await one.type("form [name=message]", "Looks great");
    await two.waitForFunction(() => document.querySelector("#typing").textContent === "user-1 is typing…");
    await one.screenshot({ path: path.join(screenshots, "user-1.png") });
    await two.screenshot({ path: path.join(screenshots, "user-2.png") });
    await sideBySide(browser, ["user-1.png", "user-2.png"], "demo.png");

    for (const [name, page] of [["user 1", one], ["user 2", two]]) {
      if (page.errors.length > 0) throw new Error(`${name}'s page threw: ${page.errors.join("; ")}`);
    }
    await one.browserContext().close();
    await two.browserContext().close();
    console.log("all demo chat checks passed");
  } finally {
    await browser.disconnect();
  }
}

/** The two screenshots side by side, in one picture (the README's). */
async function sideBySide(browser, files, out) {
  const fs = require("fs");
  const images = files.map((file) => fs.readFileSync(path.join(screenshots, file)).toString("base64"));
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 1832, height: 592 });
  await page.setContent(
    '<body style="margin:0;padding:16px;background:#c7cbe0;display:flex;gap:16px">' +
      images
        .map((image) => `<img style="border-radius:10px;box-shadow:0 4px 14px #0003" src="data:image/png;base64,${image}">`)
        .join("") +
      "</body>",
  );
  await page.waitForFunction(() => [...document.images].every((image) => image.complete));
  await page.screenshot({ path: path.join(screenshots, out) });
  await context.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
