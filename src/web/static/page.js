// Times in the browser's own zone, and relative times kept current. The page reads the same
// without this script, in UTC.
"use strict";
(function () {
  const units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const abs = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  function relative(ms) {
    const s = (ms - Date.now()) / 1000;
    // Passes come seconds apart: "now" is for the same second, or twenty rows would read it.
    if (Math.abs(s) < 1) return rtf.format(0, "second");
    for (const [unit, size] of units) {
      if (Math.abs(s) >= size || unit === "second") return rtf.format(Math.round(s / size), unit);
    }
  }
  function update() {
    for (const t of document.querySelectorAll("time[datetime]")) {
      const ms = Date.parse(t.getAttribute("datetime"));
      if (Number.isNaN(ms)) continue;
      const rel = t.querySelector(".rel");
      const at = t.querySelector(".abs");
      if (rel) rel.textContent = relative(ms);
      if (at) at.textContent = "(" + abs.format(new Date(ms)) + ")";
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    update();
    setInterval(update, 1000);
  });
})();
