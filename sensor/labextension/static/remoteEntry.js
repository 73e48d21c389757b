/*
 * cull-idle-sensor's notice in JupyterLab 4: a prebuilt (federated) extension, written by hand
 * so that installing it needs no node build. It registers its container in
 * window._JUPYTERLAB, as webpack's module federation would, and takes JupyterLab's own
 * packages (the status bar, notifications, server connection, widgets) from the shared scope
 * JupyterLab gives it in init(), so that its tokens are JupyterLab's.
 *
 * The tab asks only its own server (api/cull-idle/notice), which asks the culler at most once
 * per its interval for every tab; while the tab is hidden it asks nothing, as JupyterLab's own
 * pollers stand by.
 *
 * A second plugin tells the server that a person is at the tab: keys, pointer, wheel, touch,
 * or coming back to it, reported (api/cull-idle/input) at most once a minute and only when
 * something happened since the last report. Every request the tab makes to its server carries
 * a header saying so, and the sensor judges such a tab by its person's input, not by its polls.
 */
(function () {
  'use strict';
  const NAME = 'cull-idle-sensor';
  const ENDPOINT = 'api/cull-idle/notice';
  const INPUT_ENDPOINT = 'api/cull-idle/input';
  const TAB_HEADER = 'X-Cull-Idle-Tab';
  const INPUT_EVERY_MS = 60000;
  let shared = null;

  // What the notice takes from JupyterLab, and the versions it was written against: JupyterLab
  // 4.0 to 4.6 (Notebook 7 shares the same packages).
  const REQUIRED = {
    '@jupyterlab/apputils': [4, 0],
    '@jupyterlab/services': [7, 0],
    '@jupyterlab/statusbar': [4, 0],
    '@lumino/widgets': [2, 0]
  };

  // "4.10.2-beta.1" as numbers, a pre-release below its release, for comparing.
  function parse(version) {
    const [release, pre] = String(version).split('-', 2);
    const numbers = release.split('.').map(n => parseInt(n, 10) || 0);
    return { numbers, pre: pre || null };
  }

  function older(a, b) {
    const [x, y] = [parse(a), parse(b)];
    for (let i = 0; i < Math.max(x.numbers.length, y.numbers.length); i++) {
      const [m, n] = [x.numbers[i] || 0, y.numbers[i] || 0];
      if (m !== n) return m < n;
    }
    if (x.pre === y.pre) return false;
    if (x.pre === null || y.pre === null) return x.pre !== null;
    return x.pre < y.pre;
  }

  // The caret range ^major.minor: the same major, and no older.
  function satisfies(version, [major, minor]) {
    const [m, n] = parse(version).numbers;
    return m === major && (n || 0) >= minor;
  }

  // As JupyterLab's own loader (webpack's module federation) picks a shared singleton: the
  // version already loaded, else the newest by number, not by text (4.10 is newer than 4.9).
  function pick(versions) {
    const keys = Object.keys(versions);
    const loaded = keys.filter(key => versions[key].loaded || versions[key].lib);
    return (loaded.length ? loaded : keys).reduce((a, b) => (older(a, b) ? b : a));
  }

  async function use(pkg) {
    const versions = shared && shared[pkg];
    if (!versions || !Object.keys(versions).length) {
      throw new Error(`${NAME}: JupyterLab does not share ${pkg}`);
    }
    const version = pick(versions);
    if (!satisfies(version, REQUIRED[pkg])) {
      // What JupyterLab's loader does for an unsatisfied singleton: go on, and say so.
      console.warn(`${NAME}: written for ${pkg} ^${REQUIRED[pkg].join('.')}, given ${version}`);
    }
    const entry = versions[version];
    const factory = await entry.get();
    entry.loaded = 1;
    return factory();
  }

  function minutes(ms) {
    const m = Math.max(0, Math.round(ms / 60000));
    if (m < 1) return 'under a minute';
    if (m < 120) return `${m} min`;
    return `${Math.round(m / 60)} h`;
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function duration(seconds) {
    return seconds % 3600 === 0 ? `${seconds / 3600} h` : `${Math.round(seconds / 60)} min`;
  }

  function when(stamp) {
    const ms = stamp ? Date.parse(stamp) : NaN;
    return Number.isNaN(ms) ? null : ms;
  }

  function why(state) {
    if (state.stop_reason === 'max-age') return 'it has run for its maximum time';
    if (state.idle_by === 'work') return 'no kernel or terminal activity';
    return 'it has been idle';
  }

  const STYLE = `
    .cull-idle-countdown {
      background: var(--jp-layout-color2, #eee);
      color: var(--jp-ui-font-color0, #000);
      border: 1px solid var(--jp-warn-color1, #f57c00);
      border-left-width: 4px;
      border-radius: 2px;
      font: inherit;
      font-size: var(--jp-ui-font-size1, 13px);
      padding: 0 6px;
      margin: 2px 4px;
      cursor: pointer;
    }
    .cull-idle-top {
      display: flex;
      align-items: center;
    }
    .cull-idle-top .cull-idle-countdown {
      padding: 2px 8px;
    }
    .cull-idle-countdown:focus-visible {
      outline: 2px solid var(--jp-brand-color1, #1976d2);
      outline-offset: 1px;
    }
  `;

  function activate(app, statusBar, mods) {
    const { Notification } = mods.apputils;
    const { ServerConnection } = mods.services;
    const settings = app.serviceManager.serverSettings;
    const url = settings.baseUrl.replace(/\/?$/, '/') + ENDPOINT;

    const style = document.createElement('style');
    style.textContent = STYLE;
    document.head.appendChild(style);

    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'cull-idle-countdown';
    const item = new mods.widgets.Widget({ node: document.createElement('div') });
    item.node.appendChild(button);
    item.addClass('cull-idle-status');
    item.hide();
    if (statusBar) {
      statusBar.registerStatusItem(`${NAME}:countdown`, { item, align: 'left', rank: 1000 });
    } else {
      // Notebook 7 has no status bar: the countdown goes at the end of its top bar.
      item.addClass('cull-idle-top');
      app.shell.add(item, 'top', { rank: 1000 });
    }

    let state = null;
    let timer = null;
    let lastAsked = 0;
    let warnedNotice = null; // { id } of the warning's notice, while the warning stands
    let lastNotice = null; // the same, for the last notice before the stop
    let extra = null; // the same, for a notice the countdown's click showed

    async function ask(init) {
      const response = await ServerConnection.makeRequest(url, init || {}, settings);
      let body = {};
      try {
        body = await response.json();
      } catch (e) {
        body = {};
      }
      return { ok: response.ok, body };
    }

    // The notice's buttons; `holder.id` is the notice they are in, answered in place.
    function keepActions(holder) {
      if (!state || !state.keep_seconds) return [];
      return state.keep_seconds.map(seconds => ({
        label: `Keep running ${duration(seconds)}`,
        caption: `Ask the culler to keep this server running for ${duration(seconds)}`,
        displayType: 'accent',
        callback: event => {
          event.preventDefault();
          void keep(seconds, holder);
        }
      }));
    }

    function warning(stopAt) {
      return `Your server will be stopped at ${clock(stopAt)} (in ${minutes(stopAt - Date.now())}): ${why(state)}.`;
    }

    // Raise a notice with the keep buttons, in place of one the countdown's click showed;
    // `kind` is 'warning' or 'error'.
    function raise(kind, message) {
      if (extra) Notification.dismiss(extra.id);
      extra = null;
      const holder = { id: null, kind, message };
      holder.id = Notification[kind](message, { autoClose: false, actions: keepActions(holder) });
      return holder;
    }

    // Say it again where it stands, when what it says has changed ("in 3 min", then "in 2 min").
    function restate(holder, message) {
      if (holder.message === message) return;
      holder.message = message;
      Notification.update({
        id: holder.id,
        message,
        type: holder.kind,
        autoClose: false,
        actions: keepActions(holder)
      });
    }

    async function keep(seconds, holder) {
      let result;
      try {
        result = await ask({ method: 'POST', body: JSON.stringify({ seconds }) });
      } catch (e) {
        result = { ok: false, body: {} };
      }
      if (result.ok && result.body.until) {
        state = Object.assign({}, state, { kept_until: result.body.until, verdict: 'keep' });
        // The answer is a notice of its own, in its own colour: the clicked one may already
        // be gone (a routine question answered meanwhile saw the keep-alive and closed it).
        for (const other of [holder, warnedNotice, lastNotice, extra]) {
          if (other) Notification.dismiss(other.id);
        }
        warnedNotice = null; // answered; a later warning gets a notice of its own
        lastNotice = null;
        extra = null;
        Notification.success(`Kept running until ${clock(when(result.body.until))}.`, { autoClose: 8000 });
      } else {
        const error = (result.body && result.body.error) || 'the culler could not be asked';
        Notification.error(`Could not keep the server running: ${error}.`, { autoClose: 8000 });
      }
      render();
    }

    function render() {
      const now = Date.now();
      const stopAt = state && state.culler ? when(state.stop_at) : null;
      const keptUntil = state && state.culler ? when(state.kept_until) : null;
      const kept = keptUntil !== null && keptUntil > now;
      const windowMs = (state && state.warn_before ? state.warn_before : 900) * 1000;
      const due = stopAt !== null && !kept;
      const left = due ? stopAt - now : Infinity;

      if (due && left <= windowMs) {
        button.textContent = `Stops in ${minutes(left)}`;
        button.title = `The culler will stop this server at about ${clock(stopAt)}: ${why(state)}.`;
        button.setAttribute('aria-label', `Server stops in ${minutes(left)}. Show the notice.`);
        item.show();
      } else {
        item.hide();
      }

      const warned = due && state.warned_at;
      const advice = state && state.keep_seconds && state.keep_seconds.length
        ? 'Save your work, or keep it running.'
        : 'Save your work.';
      // One notice at a time: shortly before the stop the last notice replaces the warning,
      // and a warning that reaches the tab that late is shown as the last notice alone.
      const final = due && left <= Math.min(120000, windowMs / 4);
      if (final) {
        if (warnedNotice) Notification.dismiss(warnedNotice.id);
        warnedNotice = null;
        const text = `Your server stops in ${minutes(left)}, at ${clock(stopAt)}. Save your work now.`;
        if (!lastNotice) {
          lastNotice = raise('error', text);
        } else {
          restate(lastNotice, text);
        }
        return;
      }
      if (lastNotice) {
        // Kept, or used again: this stop is off, and the next one gets its own last notice.
        Notification.dismiss(lastNotice.id);
        lastNotice = null;
      }
      if (warned && !warnedNotice) {
        // Once per warning: the culler restamps it when it is delivered, and a person who
        // closed the notice has read it. Activity or a keep-alive ends the warning.
        warnedNotice = raise('warning', `${warning(stopAt)} ${advice}`);
      } else if (warned) {
        restate(warnedNotice, `${warning(stopAt)} ${advice}`);
      } else if (warnedNotice) {
        Notification.dismiss(warnedNotice.id);
        warnedNotice = null;
      }
    }

    // The countdown's click shows the notice that stands again, in place of the one shown.
    function showAgain() {
      if (!state || !state.culler || when(state.stop_at) === null) return;
      for (const shown of [warnedNotice, lastNotice]) {
        if (shown) Notification.dismiss(shown.id);
      }
      warnedNotice = null;
      lastNotice = null;
      render();
      if (!warnedNotice && !lastNotice) {
        // Inside the window, not yet warned: the forecast, until the next click or notice.
        extra = raise('warning', warning(when(state.stop_at)));
      }
    }
    button.addEventListener('click', showAgain);

    function pollMs() {
      return 1000 * (state && state.poll_seconds ? state.poll_seconds : 60);
    }

    async function tick() {
      timer = null;
      if (document.hidden) {
        return; // stand by; visibilitychange wakes us
      }
      lastAsked = Date.now();
      try {
        const result = await ask();
        if (result.ok) {
          state = result.body;
        }
      } catch (e) {
        // The server is restarting or gone: JupyterLab says so itself.
      }
      render();
      schedule(pollMs());
    }

    function schedule(ms) {
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(() => void tick(), ms);
    }

    document.addEventListener('visibilitychange', () => {
      if (document.hidden) {
        if (timer !== null) clearTimeout(timer);
        timer = null;
      } else {
        schedule(Math.max(0, lastAsked + pollMs() - Date.now()));
      }
    });
    // The countdown moves without asking anyone.
    setInterval(() => {
      if (!document.hidden) render();
    }, 15000);

    void app.restored.then(() => tick());
  }

  // A fetch that marks the requests to this server (under baseUrl) as the tab's own.
  function marked(original, base) {
    const wrapped = function (input, init) {
      let request = null;
      try {
        request = new Request(input, init);
      } catch (e) {
        request = null;
      }
      if (request === null || !request.url.startsWith(base)) {
        return original.call(window, input, init);
      }
      request.headers.set(TAB_HEADER, '1');
      return original.call(window, request);
    };
    wrapped.cullIdleMarked = true;
    return wrapped;
  }

  function activateInput(app, services) {
    const { ServerConnection } = services;
    const settings = app.serviceManager.serverSettings;
    const base = new URL(settings.baseUrl, window.location.href).href.replace(/\/?$/, '/');
    const url = base + INPUT_ENDPOINT;

    // JupyterLab's services hold the fetch they were given; extensions that make their own
    // settings (ServerConnection.makeSettings) take window.fetch when they ask.
    if (!window.fetch.cullIdleMarked) {
      window.fetch = marked(window.fetch, base);
    }
    if (settings.fetch && !settings.fetch.cullIdleMarked) {
      try {
        settings.fetch = marked(settings.fetch, base);
      } catch (e) {
        // Frozen settings: their requests count as they did before.
      }
    }

    let pending = false; // input since the last report
    let lastReport = -Infinity;
    let timer = null;
    let lastX = null;
    let lastY = null;

    function report() {
      timer = null;
      if (!pending) return;
      pending = false;
      lastReport = Date.now();
      ServerConnection.makeRequest(url, { method: 'POST' }, settings).catch(() => {
        pending = true; // the next input tries again
      });
    }

    function saw(event) {
      if (!event.isTrusted) return; // only what a person did, not what a script dispatched
      if (event.type === 'pointermove') {
        // The browser moves nothing by itself, but a layout change under a still pointer may
        // repeat its last position: only a move to a new place counts.
        if (event.screenX === lastX && event.screenY === lastY) return;
        lastX = event.screenX;
        lastY = event.screenY;
      }
      pending = true;
      if (timer !== null) return;
      timer = setTimeout(report, Math.max(0, lastReport + INPUT_EVERY_MS - Date.now()));
    }

    // Focus moved by a person comes with a key or a pointer; focus moved by the application
    // (a dialog, a restored layout) is not a person, so focusin is not listened to.
    for (const type of ['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart']) {
      document.addEventListener(type, saw, { capture: true, passive: true });
    }
    window.addEventListener('focus', saw);
    document.addEventListener('visibilitychange', event => {
      if (!document.hidden) saw(event);
    });
  }

  async function extension() {
    const [apputils, services, widgets, statusbar] = await Promise.all([
      use('@jupyterlab/apputils'),
      use('@jupyterlab/services'),
      use('@lumino/widgets'),
      use('@jupyterlab/statusbar')
    ]);
    const mods = { apputils, services, widgets };
    const plugin = {
      id: `${NAME}:notice`,
      description: "The culler's warning, and a button to keep the server running.",
      autoStart: true,
      optional: [statusbar.IStatusBar],
      activate: (app, statusBar) => activate(app, statusBar, mods)
    };
    const input = {
      id: `${NAME}:input`,
      description: 'Tells this server, at most once a minute, that a person used the tab.',
      autoStart: true,
      activate: app => activateInput(app, services)
    };
    return { __esModule: true, default: [plugin, input] };
  }

  window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB[NAME] = {
    init: scope => {
      shared = scope;
    },
    get: module => {
      if (module === './extension') {
        return extension().then(m => () => m);
      }
      return Promise.reject(new Error(`${NAME} has no module ${module}`));
    }
  };
})();
