// The dashboard's entry point: shows the page's view, keeps it live over server-sent events.
import { api, notify, refreshCountdowns, say, syncClock } from "./common.js";
import * as now from "./now.js";
import * as setup from "./setup.js";
import * as timeline from "./timeline.js";
import * as tryIt from "./tryit.js";

const VIEWS = { now, timeline, try: tryIt, setup };
const name = document.body.dataset.view;
const view = VIEWS[name];
const live = document.getElementById("live");
const baseTitle = document.title;

for (const section of document.querySelectorAll("main > section")) {
  if (section.id === name) section.hidden = false;
  else section.remove();  // one view per page: no hidden duplicates of labels and ids
}
document.querySelector(`nav a[data-view="${name}"]`).setAttribute("aria-current", "page");
// a bare "#main" would resolve against <base href> (another page): name this page's own path
document.querySelector("a.skip").setAttribute("href", `${window.location.pathname}#main`);

function setLive(state, text) {
  live.dataset.state = state;
  live.textContent = text;
}

function showAttention(snapshot) {
  const top = snapshot.signals.find((signal) => !signal.snoozed_until);
  document.title = top ? `${top.level}: ${top.title} · ${baseTitle}` : baseTitle;
}

function connect() {
  const stream = new EventSource("dashboard/live");
  stream.onmessage = (message) => {
    const snapshot = JSON.parse(message.data);
    syncClock(snapshot.now);
    setLive("live", say("live"));
    showAttention(snapshot);
    view.update(snapshot);
  };
  stream.onerror = () => {
    if (stream.readyState === EventSource.CLOSED) {
      setLive("closed", say("disconnected"));
    } else {
      setLive("reconnecting", say("reconnecting"));
    }
  };
}

document.getElementById("sign-out").addEventListener("click", async () => {
  try {
    await api("logout", { method: "POST" });
    window.location.assign("login");
  } catch (error) {
    notify(say("signOutFailed", { error: error.message }), true);
  }
});

setInterval(refreshCountdowns, 1000);
view.start().then(connect, (error) => notify(say("loadFailed", { error: error.message }), true));
