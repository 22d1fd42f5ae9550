// support-monitor console: polls /api/v1/status and renders it; writes use the bearer token
// kept in sessionStorage (this tab only). Text only: no server value is ever parsed as HTML.
"use strict";

const API = "/api/v1";
const refreshMs = Number(document.body.dataset.refreshMs) || 5000;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function pct(ratio) {
  return ratio === null ? "n/a" : (ratio * 100).toFixed(1) + "%";
}

function secs(value) {
  if (value === null || value === undefined) return "n/a";
  const s = Math.round(value);
  if (s < 120) return s + " s";
  if (s < 7200) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function count(n, one, many) {
  return n + " " + (n === 1 ? one : many);
}

function clock(iso) {
  // "2026-12-04T06:15:38.465523Z" -> "2026-12-04 06:15:38 UTC"
  return typeof iso === "string" ? iso.replace("T", " ").replace(/\.\d+/, "").replace(/Z$/, " UTC") : "";
}

function tile(name, label, value, note, level) {
  return el("div", { class: "tile " + (level || ""), "data-tile": name },
    el("span", { class: "label" }, label),
    el("span", { class: "value" }, value),
    note ? el("span", { class: "note" }, note) : null);
}

function channelCard(ch) {
  const tiles = [];
  if (ch.answerSeconds !== null) {
    tiles.push(tile("waiting", "Waiting now", ch.waiting));
    const over = ch.oldestWaitSeconds > ch.answerSeconds;
    tiles.push(tile("oldest", "Oldest wait", secs(ch.oldestWaitSeconds),
      "target " + secs(ch.answerSeconds) + (over ? ": OVER" : ": within"), over ? "bad" : "ok"));
    for (const w of ch.windows) {
      let level = "", note = "no contacts yet";
      if (w.serviceLevel !== null && ch.serviceLevelTarget !== null) {
        const meets = w.serviceLevel >= ch.serviceLevelTarget;
        level = meets ? "ok" : "bad";
        note = "target " + pct(ch.serviceLevelTarget) + (meets ? ": meets" : ": BELOW");
      }
      tiles.push(tile("sl-" + w.window, "Service level " + w.window, pct(w.serviceLevel), note, level));
      tiles.push(tile("abandoned-" + w.window, "Abandoned " + w.window, w.abandoned,
        "ratio " + pct(w.abandonRatio)));
    }
  }
  if (ch.firstResponseSeconds !== null || ch.nextReplySeconds !== null || ch.resolutionSeconds !== null) {
    tiles.push(tile("tickets-open", "Tickets open", ch.ticketsOpen));
    const atRisk = ch.ticketsAtRisk;
    const risk = atRisk.first_response + atRisk.next_reply + atRisk.resolution;
    tiles.push(tile("tickets-at-risk", "Tickets at risk", risk,
      "first response " + atRisk.first_response + ", next reply " + atRisk.next_reply +
      ", resolution " + atRisk.resolution,
      risk > 0 ? "warn" : "ok"));
  }
  for (const w of ch.windows) {
    tiles.push(tile("csat-" + w.window, "CSAT " + w.window, pct(w.csat), count(w.ratings, "rating", "ratings")));
    tiles.push(tile("complaints-" + w.window, "Complaints " + w.window, w.complaints));
  }
  return el("article", { class: "card", "data-channel": ch.channel, "aria-label": "channel " + ch.channel },
    el("h3", {}, ch.channel), el("div", { class: "tiles" }, ...tiles));
}

function statusBadge(status) {
  const level = status === "firing" ? "bad" : status === "pending" ? "warn" : "ok";
  return el("span", { class: "badge " + level }, status.toUpperCase());
}

function alertsTable(alerts, writable) {
  const current = alerts.filter((a) => a.status !== "resolved");
  if (current.length === 0) return el("p", { class: "ok tile", "data-empty": "alerts" }, "No alert is firing or pending.");
  const rows = current.map((a) => {
    let ack = "";
    if (a.acknowledged) ack = "acknowledged by " + a.acknowledged.by + " at " + a.acknowledged.at;
    else if (a.silencedBy) ack = "silenced";
    const action = (!a.acknowledged && a.status === "firing" && writable)
      ? el("button", { type: "button", "data-ack": a.fingerprint }, "Acknowledge") : null;
    return el("tr", { "data-alert": a.fingerprint },
      el("td", {}, statusBadge(a.status)),
      el("td", {}, el("strong", {}, a.alertname), " ", a.channel, " (" + a.severity + ")"),
      el("td", {}, a.annotations.summary || ""),
      el("td", {}, secs(a.ageSeconds)),
      el("td", {}, ack, action));
  });
  return el("table", {},
    el("thead", {}, el("tr", {}, el("th", {}, "State"), el("th", {}, "Alert"),
      el("th", {}, "Message"), el("th", {}, "Age"), el("th", {}, "Handled"))),
    el("tbody", {}, ...rows));
}

function matcherText(m) {
  return m.name + (m.isEqual ? "=" : "!") + (m.isRegex ? "~" : (m.isEqual ? "" : "=")) + m.value;
}

function silencesList(silences, writable) {
  if (silences.length === 0) return el("p", { class: "muted" }, "No silences.");
  return el("ul", {}, ...silences.map((s) => el("li", { "data-silence": s.id },
    el("strong", {}, s.status), " ", s.matchers.map(matcherText).join(", "),
    " until " + s.endsAt + " by " + s.createdBy + ": " + s.comment, " ",
    (writable && s.status !== "expired") ? el("button", { type: "button", "data-expire": s.id }, "Expire") : null)));
}

function timelineItems(records) {
  return records.slice(0, 50).map((r) => el("li", {},
    (r.time || "") + " ", el("strong", {}, r.alertname), " " + r.channel + ": " + r.previous + " → " + r.state));
}

function say(text) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.hidden = !text;
}

let writable = false;

async function refresh() {
  const updated = document.getElementById("updated");
  try {
    const response = await fetch(API + "/status", { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const data = await response.json();
    writable = data.writable;
    document.getElementById("alerts").replaceChildren(alertsTable(data.alerts, writable));
    document.getElementById("channels").replaceChildren(...data.channels.map(channelCard));
    document.getElementById("timeline").replaceChildren(...timelineItems(data.timeline));
    document.getElementById("silences").replaceChildren(silencesList(data.silences, writable));
    updated.textContent = "Updated " + clock(data.now) + " (every " + Math.round(refreshMs / 1000) + " s)";
    updated.className = "";
  } catch (error) {
    updated.textContent = "Cannot reach the daemon (" + error.message + "); retrying";
    updated.className = "bad";
  }
}

async function write(method, path, body) {
  const token = sessionStorage.getItem("supportMonitorToken") || "";
  const response = await fetch(API + path, {
    method, credentials: "same-origin", cache: "no-store",
    headers: { "Content-Type": "application/json", "X-Console-Token": token },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || "HTTP " + response.status);
  return data;
}

function parseMatcher(line) {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$/.exec(line);
  if (!m) throw new Error("cannot read matcher: " + line);
  return { name: m[1], value: m[3], isRegex: m[2].endsWith("~"), isEqual: m[2].startsWith("=") };
}

document.addEventListener("click", async (event) => {
  const target = event.target;
  if (!(target instanceof HTMLElement)) return;
  try {
    if (target.dataset.ack) {
      const who = sessionStorage.getItem("supportMonitorName") || "";
      if (!who) { say("Enter your name under Write access first."); return; }
      await write("POST", "/alerts/" + target.dataset.ack + "/ack", { by: who, via: "page" });
      say("Acknowledged.");
      await refresh();
    } else if (target.dataset.expire) {
      await write("DELETE", "/silences/" + target.dataset.expire);
      say("Silence expired.");
      await refresh();
    }
  } catch (error) { say("Refused: " + error.message); }
});

document.getElementById("access-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("supportMonitorToken", document.getElementById("token").value);
  sessionStorage.setItem("supportMonitorName", document.getElementById("who").value);
  document.getElementById("token").value = "";
  say("Saved for this tab.");
});

document.getElementById("silence-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    const matchers = form.matchers.value.split("\n").filter((l) => l.trim()).map(parseMatcher);
    const endsAt = new Date(Date.now() + Number(form.hours.value) * 3600 * 1000).toISOString();
    const createdBy = sessionStorage.getItem("supportMonitorName") || "";
    await write("POST", "/silences", { matchers, endsAt, createdBy, comment: form.comment.value });
    say("Silence created.");
    await refresh();
  } catch (error) { say("Refused: " + error.message); }
});

document.getElementById("who").value = sessionStorage.getItem("supportMonitorName") || "";
refresh();
setInterval(refresh, refreshMs);
