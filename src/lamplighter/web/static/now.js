// Now: every lamp in its live colour with what it shows and why; active signals with their
// buttons; sources with their health; the global snooze.
import {
  ago, api, clockTime, countdown, describeState, el, levelChip, notify, origin, paintSwatch, say, sayWith, swatch,
  syncList,
} from "./common.js";

const LAST_LOOKED = "lamplighter.lastLooked";  // when this browser last showed the Now page (epoch seconds)
const AWAY_AFTER = 300;  // a look less than 5 minutes ago is not "away"

const SNOOZE_CHOICES = ["15m", "1h", "4h", "1d"];  // each said as say(`snooze${choice}`)
const BY = "dashboard";

export async function start() {
  await showAway();
  rememberLooking();
  document.getElementById("snooze-all").addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = event.target.elements.for;
    run(() => api("api/snooze", { method: "POST", body: { for: chosen.value, by: BY } }),
      say("allSnoozed", { duration: chosen.selectedOptions[0].textContent }));
  });
  document.getElementById("end-snooze").addEventListener("click", () => {
    run(() => api("api/snooze", { method: "DELETE" }), say("snoozeEnded"));
  });
}

export function update(snapshot) {
  renderSnooze(snapshot.snooze);
  const lamps = document.getElementById("lamps");
  syncList(lamps, snapshot.lamps, (lamp) => lamp.name, createLamp, (node, lamp) => updateLamp(node, lamp, snapshot.signals));
  syncList(document.getElementById("signals"), snapshot.signals, (s) => s.event_id, createSignal, updateSignal);
  document.getElementById("signals-empty").hidden = snapshot.signals.length > 0;
  syncList(document.getElementById("sources"), snapshot.sources, (s) => s.name, createSource, updateSource);
  document.getElementById("sources-empty").hidden = snapshot.sources.length > 0;
  const agents = snapshot.agents || [];
  syncList(document.getElementById("agents"), agents, (a) => a.room, createAgent, updateAgent);
  document.getElementById("agents-title").hidden = agents.length === 0;
}

async function run(work, done) {
  try {
    await work();
    notify(done);
  } catch (error) {
    notify(error.message, true);
  }
}

// ---- while you were away ---------------------------------------------------------------------------

async function showAway() {
  const last = Number(localStorage.getItem(LAST_LOOKED)) || null;
  const now = Date.now() / 1000;
  const away = await api(last ? `api/away?since=${last}` : "api/away").catch(() => null);
  if (!away || !away.total || (away.reason === "since" && now - last < AWAY_AFTER)) return;
  const counts = Object.entries(away.counts).map(([outcome, count]) => say("awayCount", { count, outcome })).join(", ");
  const summary = away.reason === "quiet_hours"
    ? say("awayQuiet", { start: clockTime(away.quiet_hours.start), end: clockTime(away.quiet_hours.end), total: away.total, counts })
    : say("awaySince", { time: clockTime(away.since), total: away.total, counts });
  const panel = el("section", { id: "away", class: "panel away", "aria-labelledby": "away-title" },
    el("h2", { id: "away-title" }, say("awayTitle")), el("p", {}, summary),
    el("ul", { class: "away-events" }, away.events.map((event) => el("li", { dataset: { event: String(event.id) } },
      `${clockTime(event.received_at)} `, levelChip(event.level), ` ${event.title} · `, el("em", {}, event.outcome)))),
    el("button", { type: "button", class: "quiet", onclick: () => panel.remove() }, say("awayDismiss")));
  document.getElementById("signals-title").before(panel);
}

function rememberLooking() {
  const mark = () => { if (document.visibilityState === "visible") localStorage.setItem(LAST_LOOKED, String(Date.now() / 1000)); };
  mark();
  setInterval(mark, 30_000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") localStorage.setItem(LAST_LOOKED, String(Date.now() / 1000));
  });
}

function renderSnooze(snooze) {
  const panel = document.getElementById("snooze");
  const state = document.getElementById("snooze-state");
  panel.dataset.active = String(Boolean(snooze));
  document.getElementById("end-snooze").hidden = !snooze;
  state.replaceChildren(snooze
    ? el("span", {}, sayWith("snoozedBy", { snoozed: el("strong", {}, say("snoozed")), by: snooze.by,
      time: clockTime(snooze.until), left: countdown(snooze.until) }))
    : say("notSnoozed"));
}

// ---- lamps -------------------------------------------------------------------------------------------

function createLamp(lamp) {
  const page = `lamp/${encodeURIComponent(lamp.name)}`;
  return el("li", { class: "lamp panel", dataset: { lamp: lamp.name } },
    swatch(),
    el("div", { class: "lamp-info" },
      el("div", { class: "lamp-head" }, el("h3", {}, lamp.name), el("span", { class: "badge" })),
      el("p", { class: "lamp-what" }),
      el("p", { class: "lamp-why muted" }),
      el("p", { class: "lamp-error error" }),
      el("p", { class: "lamp-look muted" }),
      el("p", { class: "muted" }, el("code", {}, lamp.url), " · ",
        el("a", { href: page, "aria-label": say("fullScreenOf", { lamp: lamp.name }) }, say("fullScreen")))));
}

function updateLamp(node, lamp, signals) {
  const look = describeState(lamp.state, lamp.color_name);
  paintSwatch(node.querySelector(".swatch"), lamp.state, `${lamp.name}: ${look}`);
  const healthy = lamp.online && lamp.reached !== false;
  node.dataset.online = String(healthy);
  const badge = node.querySelector(".badge");
  badge.textContent = say(!lamp.online ? "offline" : !healthy ? "notShowingIt" : lamp.kind === "siren" ? "sirenOnline" : "online");
  badge.className = `badge ${healthy ? "good" : "bad"}`;
  const showing = lamp.showing;
  node.querySelector(".lamp-what").replaceChildren(
    ...(showing ? [levelChip(showing.level, showing.color), " ", showing.title] : [say("nothingToShow")]));
  node.querySelector(".lamp-why").replaceChildren(...(showing ? whyShowing(showing, lamp, signals) : whyIdle(lamp, signals)));
  const error = node.querySelector(".lamp-error");
  error.hidden = healthy;
  error.textContent = healthy ? ""
    : lamp.online ? say("lampError", { error: lamp.error })
    : say("offlineError", { error: lamp.error || say("noAnswer") });
  node.querySelector(".lamp-look").textContent = say("nowLooks", { look });
  if (lamp.kind === "siren") describeSiren(node, lamp, signals, healthy);
}

function describeSiren(node, lamp, signals, healthy) {
  const mine = signals.filter((s) => s.sirens.includes(lamp.name) && !s.snoozed_until);
  const sounding = mine.find((s) => s.sounding);
  const armed = mine.filter((s) => !s.sounding && s.escalates_at !== null)
    .sort((a, b) => a.escalates_at - b.escalates_at)[0];
  node.dataset.siren = sounding ? "sounding" : armed ? "armed" : "silent";
  const badge = node.querySelector(".badge");
  if (healthy) {
    badge.textContent = say(sounding ? "sounding" : armed ? "armed" : "silent");
    badge.className = `badge ${sounding ? "bad" : armed ? "warn" : "good"}`;
  }
  const what = node.querySelector(".lamp-what");
  if (!sounding) node.querySelector(".lamp-why").replaceChildren();  // "no active signal" is a lamp's idle, not a siren's
  if (sounding) what.replaceChildren(el("strong", {}, say("soundingFor")), " ", levelChip(sounding.level, sounding.color),
    " ", sounding.title);
  else if (armed) what.replaceChildren(say("armedFor", { time: clockTime(armed.escalates_at, true) }), " ",
    countdown(armed.escalates_at), " · ", levelChip(armed.level, armed.color), " ", armed.title);
  else what.replaceChildren(say("silentWhy"));
}

function whyShowing(showing, lamp, signals) {
  const waiting = signals.filter((s) => s.event_id !== showing.event_id && !s.snoozed_until && s.lamps.includes(lamp.name));
  return [`${from(showing)} · ${say("since", { time: clockTime(showing.started_at) })} · `, hold(showing),
    waiting.length ? ` · ${say("waiting", { count: waiting.length })}` : ""];
}

function whyIdle(lamp, signals) {
  const meant = signals.find((s) => !s.snoozed_until && s.lamps.includes(lamp.name));
  if (meant && !lamp.online) return [say("unreachable", { level: meant.level, title: meant.title })];
  const snoozed = signals.filter((s) => s.snoozed_until && s.lamps.includes(lamp.name));
  if (snoozed.length) {
    const first = snoozed[0];
    return [say("snoozedUntil", { level: first.level, title: first.title, time: clockTime(first.snoozed_until) })];
  }
  return [say("idle")];
}

function from(signal) {
  return origin(signal.sender, signal.source);
}

function hold(signal) {
  return signal.expires_at === null ? say("untilAcked") : countdown(signal.expires_at);
}

// ---- signals -----------------------------------------------------------------------------------------

function createSignal(signal) {
  const id = signal.event_id;
  const choose = el("select", { id: `snooze-for-${id}` },
    SNOOZE_CHOICES.map((value) => el("option", { value }, say(`snooze${value}`))));
  const described = `signal-title-${id}`;
  return el("li", { class: "signal panel", dataset: { event: String(id) } },
    el("div", { class: "signal-head" }, el("span", { class: "level" }),
      el("span", { class: "signal-title", id: described })),
    el("p", { class: "signal-why muted" }),
    el("img", { class: "snapshot", hidden: true, alt: "", loading: "lazy", width: "320", height: "180" }),
    el("div", { class: "actions" },
      el("button", { type: "button", "aria-describedby": described, onclick: () => acknowledge(id) }, say("acknowledge")),
      el("label", { for: choose.id }, say("snoozeFor")), choose,
      el("button", { type: "button", class: "quiet", "aria-describedby": described, onclick: () => snooze(id, choose) },
        say("snooze"))));
}

function updateSignal(node, signal) {
  node.querySelector(".level").replaceChildren(levelChip(signal.level, signal.color));
  node.querySelector(".signal-title").textContent = signal.title;
  node.dataset.where = signal.where ? signal.where.state : "";
  const picture = node.querySelector(".snapshot");
  picture.hidden = !signal.picture;
  if (signal.picture && picture.getAttribute("src") !== signal.picture) {
    picture.src = signal.picture;
    picture.alt = say("snapshot", { title: signal.title });
  }
  node.querySelector(".signal-why").replaceChildren(
    `${from(signal)} · ${say("event", { id: signal.event_id })} · ${say("since", { time: clockTime(signal.started_at) })} · `,
    hold(signal), " · ",
    ...where(signal), ...escalation(signal));
}

function where(signal) {
  if (!signal.where) return [];
  const lamps = signal.where.lamps.length ? ` (${signal.where.lamps.join(", ")})` : "";
  return [signal.where.state === "on_lamp" ? `${signal.where.text}${lamps}` : signal.where.text];
}

function escalation(signal) {
  if (!signal.sirens.length || signal.escalates_at === null) return [];
  const sirens = signal.sirens.join(", ");
  if (signal.sounding) {
    return [" · ", el("strong", { class: "sounding" }, say("sirenSounding", { sirens, time: clockTime(signal.escalates_at) }))];
  }
  return [" · ", ...sayWith("escalatesIn", { sirens, left: countdown(signal.escalates_at, say("unlessAcked")) })];
}

function acknowledge(id) {
  run(async () => {
    await api(`api/events/${id}/ack`, { method: "POST", body: { by: BY } });
    document.getElementById("signals-title").focus();
  }, say("acknowledgedEvent", { id }));
}

function snooze(id, choose) {
  run(() => api(`api/events/${id}/snooze`, { method: "POST", body: { for: choose.value, by: BY } }),
    say("eventSnoozed", { id, duration: choose.selectedOptions[0].textContent }));
}

// ---- rooms (a hub's agents) ---------------------------------------------------------------------------

function createAgent(agent) {
  return el("li", { class: "source panel agent" },
    el("h3", {}, agent.room), el("span", { class: "muted" }, say("roomAgent")), el("span", { class: "badge" }),
    el("p", { class: "source-detail muted" }));
}

function updateAgent(node, agent) {
  const [text, tone] = !agent.online ? ["offline", "bad"] : agent.problem ? ["notShowing", "warn"] : ["online", "good"];
  const badge = node.querySelector(".badge");
  badge.textContent = say(text);
  badge.className = `badge ${tone}`;
  const seen = agent.last_seen ? say("lastSeen", { ago: ago(agent.last_seen) }) : say("notHeard");
  const lamps = agent.lamps.map((lamp) => say(lamp.online ? "lampOnline" : "lampOffline", { lamp: lamp.name })).join(", ");
  const lag = agent.lag === null ? "" : ` · ${say("lag", { ms: Math.round(agent.lag * 1000) })}`;
  node.querySelector(".source-detail").textContent =
    `${seen}${lamps ? ` · ${lamps}` : ""}${lag}${agent.problem ? ` · ${agent.problem}` : ""}`;
}

// ---- sources -----------------------------------------------------------------------------------------

function createSource(source) {
  return el("li", { class: "source panel" },
    el("h3", {}, source.name), el("span", { class: "muted" }, source.type), el("span", { class: "badge" }),
    el("p", { class: "source-detail muted" }));
}

function updateSource(node, source) {
  const [text, tone] = source.blind ? ["blind", "bad"] : source.connected ? ["connected", "good"]
    : ["sourceDisconnected", "warn"];
  const badge = node.querySelector(".badge");
  badge.textContent = say(text);
  badge.className = `badge ${tone}`;
  const heard = source.last_event_at ? say("lastEvent", { ago: ago(source.last_event_at) }) : say("noEventYet");
  const expected = source.expect_every && !source.blind ? ` · ${say("expectedEvery", { every: source.expect_every })}` : "";
  const problem = source.blind || source.error;
  node.querySelector(".source-detail").textContent = `${heard}${expected}${problem ? ` · ${problem}` : ""}`;
}
