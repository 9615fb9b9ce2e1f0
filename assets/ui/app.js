// photoboothd kiosk screen.
//
// The daemon owns the session (src/booth/session/; view.rs is what this page gets); this page
// draws the SessionView it receives on /api/events (Server-Sent Events, polling /api/session every
// second when they fail) and turns taps into POSTs. It keeps only what is the customer's alone: the
// language they picked (for their session; back to the booth's default on the attract screen) and
// the copies counter.
// Plain ES2017, no build step, nothing loaded from the network.
'use strict';

(function () {
  var NBSP = '\u00a0';
  // Narrow no-break space: the thin thousands separator ("40 000").
  var THIN = '\u202f';

  // The words on the screen in uz/ru/en (Uzbek in Latin script with the proper oʻ/gʻ letters,
  // U+02BB): texts.json, read through i18n.js before anything is drawn.
  var TEXTS = null;

  var PAPER_REASONS = ['printer_media_empty', 'media_counter_empty'];
  var BLOCKER_REASONS = ['printer_stopped', 'printer_media_empty', 'printer_offline', 'media_counter_empty',
    'printer_error', 'printer_job_stuck', 'scheduler_unreachable', 'event_over',
    'disk_low', 'clock_unsynced', 'store_failed'];
  // Blockers that are not the printer's (disk space, clock, database): "the booth is not ready".
  var BOOTH_REASONS = ['disk_low', 'clock_unsynced', 'store_failed'];
  // After the last shot the capture screen also covers composing the page; past this, say so.
  var PREPARING_AFTER_MS = 1500;
  // A language picked on the attract screen falls back to the default when nobody touches it.
  var IDLE_LANGUAGE_RESET_MS = 60000;
  // Without a live event stream, "connecting" shows after this many failed polls in a row (one a
  // second); a poll that gets no answer in POLL_TIMEOUT_MS counts as failed.
  var OFFLINE_AFTER_FAILURES = 3;
  var POLL_TIMEOUT_MS = 5000;
  // A reload that has not happened after this long is given up (the page carries on as it is).
  var RELOAD_GRACE_MS = 10000;

  var state = {
    view: null,
    offset: 0, // daemon clock minus this page's clock, ms
    lang: null, // the customer's choice; null = the booth's default
    copies: 1,
    copiesSession: null,
    cancelRefusedFor: null, // order whose cancel the daemon refused: a payment is under way
    busy: false,
    lastTouch: Date.now(),
    failures: 0, // polls in a row without an answer
    wasOffline: false,
    reloadingSince: 0,
    screen: null,
    screenSince: 0,
    countdownShown: null,
    images: {}
  };

  // `/?transport=poll` skips the event stream: the fallback, for tests and for debugging.
  var POLL_ONLY = /[?&]transport=poll(&|$)/.test(window.location.search);

  // For tests and for debugging on the booth: every screen shown, in order, and a render counter.
  var booth = { screens: [], renders: 0, screen: null, transport: POLL_ONLY ? 'poll' : 'events' };
  window.booth = booth;

  function $(id) { return document.getElementById(id); }

  function lang() {
    var l = state.lang || (state.view && state.view.language) || 'uz';
    return TEXTS[l] ? l : 'uz';
  }

  function t(key, params) {
    var value = boothTexts.text(TEXTS, lang(), key, params);
    return value === undefined ? key : value;
  }

  function group(n, sep) {
    return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, sep);
  }

  function money(sum) {
    switch (lang()) {
      case 'en': return group(sum, ',') + NBSP + 'UZS';
      case 'ru': return group(sum, THIN) + NBSP + 'сум';
      default: return group(sum, THIN) + NBSP + 'soʻm';
    }
  }

  function daemonNow() { return Date.now() + state.offset; }

  function clockText(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    var m = Math.floor(s / 60);
    var r = s % 60;
    return m + ':' + (r < 10 ? '0' : '') + r;
  }

  function setText(id, text) {
    var el = $(id);
    if (el.textContent !== text) el.textContent = text;
  }

  // Sets an image once per distinct URL, so re-renders never reload (and flicker) it.
  function setImage(id, url) {
    if (state.images[id] === url) return;
    state.images[id] = url;
    var img = $(id);
    if (url) img.src = url; else img.removeAttribute('src');
  }

  function screenOf(v) {
    if (v.stage === 'idle') return v.blocker || !v.accepting_orders ? 'out_of_service' : 'idle';
    return v.stage;
  }

  function blockerText(reason) {
    if (reason === 'event_over') return t('oos_event_over');
    if (BOOTH_REASONS.indexOf(reason) >= 0) return t('oos_booth');
    return PAPER_REASONS.indexOf(reason) >= 0 ? t('oos_paper') : t('oos_printer');
  }

  function showScreen(name) {
    if (state.screen === name) return;
    state.screen = name;
    state.screenSince = Date.now();
    var sections = document.querySelectorAll('#screens > [data-screen]');
    for (var i = 0; i < sections.length; i++) {
      sections[i].hidden = sections[i].getAttribute('data-screen') !== name;
    }
    document.body.setAttribute('data-screen', name);
    booth.screen = name;
    booth.screens.push(name);
    state.countdownShown = null;
  }

  function dots(v) {
    var html = '';
    for (var i = 1; i <= v.shots_total; i++) {
      html += '<i class="' + (i < v.shot || (i === v.shot && v.stage === 'capturing') ? 'on' : '') + '"></i>';
    }
    var all = document.querySelectorAll('[data-dots]');
    for (var j = 0; j < all.length; j++) {
      if (all[j].innerHTML !== html) all[j].innerHTML = html;
    }
  }

  function cancelAllowed(v) {
    if (v.stage === 'review' || v.stage === 'choose_copies') return true;
    if (v.stage === 'awaiting_payment') return !(v.order && state.cancelRefusedFor === v.order.order_id);
    return false;
  }

  function render() {
    var v = state.view;
    if (!v) return;
    var l = lang();
    document.documentElement.lang = l;

    var keyed = document.querySelectorAll('[data-t]');
    for (var i = 0; i < keyed.length; i++) {
      var text = t(keyed[i].getAttribute('data-t'));
      if (keyed[i].textContent !== text) keyed[i].textContent = text;
    }
    var langs = document.querySelectorAll('.lang');
    for (var j = 0; j < langs.length; j++) {
      var on = langs[j].getAttribute('data-lang') === l;
      langs[j].classList.toggle('active', on);
      langs[j].setAttribute('aria-pressed', on ? 'true' : 'false');
    }

    var screen = screenOf(v);
    showScreen(screen);
    var cancel = cancelAllowed(v);
    $('cancel').hidden = !cancel;
    $('brand').hidden = cancel;

    var order = v.order;
    var blockerLines = document.querySelectorAll('[data-blocker-line]');
    for (var k = 0; k < blockerLines.length; k++) {
      blockerLines[k].hidden = !v.blocker;
      if (v.blocker) blockerLines[k].textContent = blockerText(v.blocker.reason);
    }

    switch (screen) {
      case 'idle':
        setText('attract-price', t('attract_price', { shots: v.shots_total, price: money(v.price_per_copy) }));
        break;
      case 'out_of_service':
        setText('oos-reason', blockerText(v.blocker ? v.blocker.reason : ''));
        break;
      case 'countdown':
        setText('countdown-shot', t('shot_of', { n: v.shot, total: v.shots_total }));
        dots(v);
        break;
      case 'capturing':
        setText('capturing-shot', t('shot_of', { n: v.shot, total: v.shots_total }));
        dots(v);
        break;
      case 'review':
        // The preview keeps its URL across retakes; the query makes each take a new image.
        setImage('preview', v.preview ? v.preview + '?take=' + v.session_id + '-' + v.retakes_left : null);
        var retake = $('retake');
        retake.disabled = v.retakes_left <= 0;
        setText('retake-text', v.retakes_left > 0 ? t('retake', { n: v.retakes_left }) : t('no_retakes'));
        $('accept').disabled = false;
        break;
      case 'choose_copies':
        setImage('copies-preview', v.preview ? v.preview + '?take=' + v.session_id + '-' + v.retakes_left : null);
        var max = Math.max(1, v.max_copies || 1);
        state.copies = Math.min(Math.max(1, state.copies), max);
        setText('copies-count', String(state.copies));
        $('copies-minus').disabled = state.copies <= 1;
        $('copies-plus').disabled = state.copies >= max;
        setText('copies-each', t('each', { price: money(v.price_per_copy) }));
        setText('total', money(state.copies * v.price_per_copy));
        $('pay').disabled = !!v.blocker;
        break;
      case 'awaiting_payment':
        setImage('qr', order ? order.qr_png : null);
        setText('pay-amount', order ? money(order.amount) : '');
        setText('pay-order', order ? t('order_no', { id: order.order_id }) : '');
        setText('pay-copies', order ? t('copies_n', { n: order.copies }) : '');
        var paying = !!(order && state.cancelRefusedFor === order.order_id);
        $('pay-in-progress').hidden = !paying;
        $('pay-steps').hidden = paying;
        break;
      case 'printing':
        var p = order && order.print;
        var status = '';
        if (p && p.attempts > 1) status = t('print_retry', { n: p.attempts });
        else if (v.blocker || (p && p.status === 'queued' && p.attempts > 0)) status = t('print_waiting');
        setText('print-status', status);
        setText('printing-order', order ? t('order_no', { id: order.order_id }) : '');
        break;
      case 'done':
        setText('done-order', order ? t('order_no', { id: order.order_id }) : '');
        break;
      case 'error':
        var code = (v.error && v.error.code) || 'other';
        var texts = t('errors')[code] || t('errors').other;
        $('screens').querySelector('[data-screen="error"]').setAttribute('data-error', code);
        setText('error-title', texts[0]);
        setText('error-body', texts[1]);
        var showOrder = code === 'print_failed' && order;
        $('error-order').hidden = !showOrder;
        setText('error-order', showOrder ? t('order_no', { id: order.order_id }) : '');
        // The number must stay up until staff sees it: no button that makes it go away.
        $('error-ok').hidden = code === 'print_failed';
        break;
    }
    renderEvent(v, screen);
    renderDigitalOffer(v, screen);
    renderDigital(order, screen);
    tick();
    booth.renders++;
  }

  // ---------- event mode (a prepaid party): free prints, no price, no payment screen ----------

  function renderEvent(v, screen) {
    var ev = v.event;
    document.body.classList.toggle('event-mode', !!ev);
    if (!ev) return;
    switch (screen) {
      case 'idle':
        setText('attract-price', ev.title ? ev.title : t('event_free'));
        var note = $('screens').querySelector('[data-t="attract_pay_note"]');
        if (note) note.textContent = ev.prints_left != null ? t('event_left', { n: ev.prints_left }) : t('event_free');
        break;
      case 'choose_copies':
        setText('copies-each', ev.prints_left != null ? t('event_left', { n: ev.prints_left }) : t('event_free'));
        setText('total', '');
        var pay = $('pay').querySelector('[data-t]');
        if (pay) pay.textContent = t('event_print');
        break;
      case 'printing':
        var sub = $('screens').querySelector('[data-screen="printing"] [data-t="printing_sub"]');
        if (sub) sub.textContent = t('event_printing_sub');
        break;
    }
  }

  // ---------- digital copies ----------

  // The copies screen: "digital only, no print" while it is on sale; prints off while the printer
  // cannot print.
  function renderDigitalOffer(v, screen) {
    if (screen !== 'choose_copies') return;
    var onSale = typeof v.digital_price === 'number' && !v.blocker;
    $('pay-digital').hidden = !onSale;
    if (onSale) setText('digital-price', money(v.digital_price));
    var noPrints = !!v.print_blocker;
    $('prints-unavailable').hidden = !(noPrints && onSale);
    if (noPrints) $('pay').disabled = true;
  }

  // The done screen: the download link's QR, and the words for a digital-only order.
  function renderDigital(order, screen) {
    if (screen !== 'done') return;
    var url = order && order.download_url ? order.download_qr_png : null;
    $('done-digital').hidden = !url;
    setImage('done-qr', url);
    var digitalOnly = !!(order && order.kind === 'digital');
    // A digital-only order has nothing in the printer: its own words, by swapping the text keys.
    retext(document.querySelector('[data-screen="done"] > h1'), digitalOnly ? 'digital_done_title' : 'done_title');
    retext(document.querySelector('[data-screen="done"] > .lead'), digitalOnly ? 'digital_done_sub' : 'done_sub');
  }

  function retext(el, key) {
    if (!el) return;
    if (el.getAttribute('data-t') !== key) el.setAttribute('data-t', key);
    var text = t(key);
    if (el.textContent !== text) el.textContent = text;
  }

  // Everything that moves with the clock: the countdown, the screen's time limit, the order's TTL.
  function tick() {
    var v = state.view;
    if (!v) return;
    var now = daemonNow();
    if (state.screen === 'countdown' && v.countdown_ends_at) {
      var n = Math.max(1, Math.ceil((v.countdown_ends_at - now) / 1000));
      if (state.countdownShown !== n) {
        state.countdownShown = n;
        var el = $('countdown-number');
        el.textContent = String(n);
        el.classList.remove('tick');
        void el.offsetWidth; // restarts the animation
        el.classList.add('tick');
      }
    }
    if (state.screen === 'capturing') {
      var preparing = v.shot >= v.shots_total && Date.now() - state.screenSince > PREPARING_AFTER_MS;
      setText('smile', t(preparing ? 'preparing' : 'smile'));
      $('smile').classList.toggle('preparing', preparing);
    }
    var limited = ['review', 'choose_copies', 'done', 'error'].indexOf(state.screen) >= 0 && v.deadline;
    var timer = $('timer');
    timer.hidden = !limited;
    if (limited) {
      var left = v.deadline - now;
      setText('timer-text', clockText(left));
      timer.classList.toggle('urgent', left <= 10000);
    }
    if (state.screen === 'awaiting_payment' && v.order) {
      var ttl = v.order.expires_at - now;
      setText('pay-timer', clockText(ttl));
      $('pay-timer').parentNode.classList.toggle('urgent', ttl <= 60000);
    }
    if (state.screen === 'idle' && state.lang && Date.now() - state.lastTouch > IDLE_LANGUAGE_RESET_MS) {
      state.lang = null;
      render();
    }
    mirrorTick();
    var offline = !live && state.failures >= OFFLINE_AFTER_FAILURES;
    $('offline').hidden = !offline;
    state.wasOffline = state.wasOffline || offline;
  }

  function onView(v) {
    // Back after an outage (a restart, perhaps an upgrade): load the page afresh from the daemon.
    if (state.wasOffline) {
      if (!state.reloadingSince) {
        state.reloadingSince = Date.now();
        window.location.reload();
      }
      if (Date.now() - state.reloadingSince < RELOAD_GRACE_MS) return;
      state.wasOffline = false;
    }
    var prev = state.view;
    state.offset = (typeof v.now === 'number' ? v.now : Date.now()) - Date.now();
    // The customer's language lasts for their session: back to the default once it ends.
    if (prev && prev.session_id != null && v.session_id !== prev.session_id) state.lang = null;
    if (v.session_id !== state.copiesSession) {
      state.copiesSession = v.session_id;
      state.copies = 1;
      state.cancelRefusedFor = null;
    }
    // A cancel is refused only while Payme holds the order: once it lets go (a declined card, a
    // timeout), the payment steps and the cancel button come back.
    if (v.order && v.order.order_id === state.cancelRefusedFor && !v.order.payment_in_progress) {
      state.cancelRefusedFor = null;
    }
    state.view = v;
    render();
  }

  // ---------- talking to the daemon ----------

  var live = false; // the event stream delivers
  var source = null;
  var pollTimer = null;

  function connect() {
    if (POLL_ONLY || !window.EventSource) { startPolling(); return; }
    source = new EventSource('/api/events');
    source.addEventListener('session', function (e) {
      live = true;
      state.failures = 0;
      stopPolling();
      try { onView(JSON.parse(e.data)); } catch (err) { /* a broken event: the next one repairs it */ }
    });
    source.onerror = function () {
      live = false;
      startPolling();
      if (source.readyState === 2) { // CLOSED: the browser gave up; try a fresh stream later
        source.close();
        setTimeout(connect, 5000);
      }
    };
  }

  function startPolling() {
    if (pollTimer) return;
    poll();
    pollTimer = setInterval(poll, 1000);
  }

  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
  }

  function poll() {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, POLL_TIMEOUT_MS) : null;
    fetch('/api/session', { cache: 'no-store', signal: controller ? controller.signal : undefined })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (v) {
        clearTimeout(timer);
        if (!v) { state.failures += 1; return; }
        state.failures = 0;
        if (!live) onView(v);
      })
      .catch(function () { clearTimeout(timer); state.failures += 1; });
  }

  var toastTimer = null;
  function toast(text) {
    var el = $('toast');
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.hidden = true; }, 5000);
  }

  // Every tap tells the daemon the customer's language: their order's Payme checkout opens in it.
  function withLanguage(body) {
    var out = {};
    for (var k in body || {}) if (Object.prototype.hasOwnProperty.call(body, k)) out[k] = body[k];
    out.language = lang();
    return out;
  }

  // One request at a time: a double tap must not pay twice or skip a screen.
  function act(path, body, onRefused) {
    if (state.busy) return;
    state.busy = true;
    document.body.classList.add('busy');
    fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(withLanguage(body))
    })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (r.ok) return;
          var reason = data && data.reason;
          if (onRefused && onRefused(reason)) return;
          if (r.status === 503 && BLOCKER_REASONS.indexOf(reason) >= 0) toast(blockerText(reason));
          else if (r.status !== 409) toast(t('try_again'));
          // 409: the screen changed under the tap (a timeout, the button); the next view shows it.
        });
      })
      .catch(function () { toast(t('net_error')); })
      .then(function () {
        state.busy = false;
        document.body.classList.remove('busy');
        if (!live) poll();
      });
  }

  // ---------- every screen shape: pictures at their own aspect ratio ----------
  // A `.fit-img` is sized by CSS from `--ar`; once an image has loaded, its own ratio replaces the
  // guess, so the box around it hugs it at any screen size.

  function fitImages() {
    var imgs = document.querySelectorAll('img.fit-img');
    for (var i = 0; i < imgs.length; i++) {
      imgs[i].addEventListener('load', function () {
        if (this.naturalWidth > 0 && this.naturalHeight > 0) {
          this.style.setProperty('--ar', String(this.naturalWidth / this.naturalHeight));
        }
      });
    }
  }

  // ---------- live view: the mirror while posing ----------
  // While a screen shows the mirror (the countdown; the attract screen too with [camera]
  // live_idle), one fetch reads the MJPEG stream of /api/camera/live and each frame is shown as it
  // comes; a frame that arrives while the last one is still being decoded is skipped. With no frame
  // for LIVE_STALL_MS (the stream failed, the camera is busy with a still) `live-on` goes and the
  // plain countdown shows: the session never waits for the mirror.
  var LIVE_STALL_MS = 1500;
  var LIVE_RETRY_MS = 1000;
  var mirror = { idle: false, ctl: null, lastFrame: 0, url: null, decoding: false, retryAt: 0 };
  booth.liveFrames = 0;
  booth.liveOn = false;
  booth.mirror = mirror;

  function mirrorWanted() {
    return state.screen === 'countdown' || (state.screen === 'idle' && mirror.idle);
  }

  function mirrorTick() {
    var want = mirrorWanted();
    if (want && !mirror.ctl && Date.now() >= mirror.retryAt) mirrorStart();
    if (!want && mirror.ctl) mirrorStop();
    var on = want && Date.now() - mirror.lastFrame < LIVE_STALL_MS;
    if (on !== booth.liveOn) {
      booth.liveOn = on;
      document.body.classList.toggle('live-on', on);
    }
  }

  function mirrorStart() {
    if (!window.fetch || !window.AbortController || !window.ReadableStream) return;
    var ctl = new AbortController();
    mirror.ctl = ctl;
    fetch('/api/camera/live', { cache: 'no-store', signal: ctl.signal })
      .then(function (r) {
        if (!r.ok || !r.body) throw new Error('live view: HTTP ' + r.status);
        return mirrorRead(r.body.getReader(), ctl);
      })
      .catch(function () { /* the plain countdown shows; tried again in a moment */ })
      .then(function () {
        if (mirror.ctl !== ctl) return;
        mirror.ctl = null;
        mirror.retryAt = Date.now() + LIVE_RETRY_MS;
      });
  }

  function mirrorStop() {
    var ctl = mirror.ctl;
    mirror.ctl = null;
    mirror.lastFrame = 0;
    if (ctl) ctl.abort();
  }

  function concatBytes(a, b) {
    var out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    return out;
  }

  function headEnd(buf) {
    for (var i = 0; i + 3 < buf.length; i++) {
      if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
    }
    return -1;
  }

  // Each part: "--frame", its headers (with Content-Length), a blank line, the JPEG, CRLF.
  function mirrorRead(reader, ctl) {
    var buf = new Uint8Array(0);
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done || mirror.ctl !== ctl) return undefined;
        buf = concatBytes(buf, chunk.value);
        for (;;) {
          var end = headEnd(buf);
          if (end < 0) break;
          var head = String.fromCharCode.apply(null, buf.subarray(0, end));
          var m = /content-length:\s*(\d+)/i.exec(head);
          if (!m) throw new Error('live view: a part without Content-Length');
          var start = end + 4;
          var len = Number(m[1]);
          if (buf.length < start + len) break;
          mirrorShow(buf.slice(start, start + len));
          buf = buf.slice(start + len);
        }
        return pump();
      });
    }
    return pump();
  }

  // The mirror counts as live from a frame on screen, not one merely received.
  function mirrorShow(bytes) {
    booth.liveFrames++;
    var img = document.querySelector('#screens > [data-screen]:not([hidden]) img[data-live]');
    if (!img || mirror.decoding) return;
    mirror.decoding = true;
    var url = URL.createObjectURL(new Blob([bytes], { type: 'image/jpeg' }));
    img.onload = function () {
      if (mirror.url) URL.revokeObjectURL(mirror.url);
      mirror.url = url;
      mirror.decoding = false;
      mirror.lastFrame = Date.now();
    };
    img.onerror = function () {
      URL.revokeObjectURL(url);
      mirror.decoding = false;
    };
    img.src = url;
  }

  function mirrorInit() {
    fetch('/api/camera', { cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (c) { mirror.idle = !!(c && c.live_idle); })
      .catch(function () { /* no mirror on the attract screen */ });
  }

  function on(id, handler) {
    $(id).addEventListener('click', function (e) {
      e.stopPropagation();
      if (!this.disabled) handler(e);
    });
  }

  function init() {
    document.addEventListener('pointerdown', function () { state.lastTouch = Date.now(); }, true);
    document.addEventListener('contextmenu', function (e) { e.preventDefault(); });

    var langs = document.querySelectorAll('.lang');
    for (var i = 0; i < langs.length; i++) {
      langs[i].addEventListener('click', function () {
        state.lang = this.getAttribute('data-lang');
        state.lastTouch = Date.now();
        render();
      });
    }
    // The whole attract screen is the start button.
    document.querySelector('[data-screen="idle"]').addEventListener('click', function () {
      if (state.screen === 'idle') act('/api/session/start');
    });
    on('start', function () { act('/api/session/start'); });
    on('accept', function () { act('/api/session/accept'); });
    on('retake', function () { act('/api/session/retake'); });
    on('cancel', function () {
      var v = state.view;
      var orderId = v && v.order ? v.order.order_id : null;
      act('/api/session/cancel', null, function (reason) {
        if (reason !== 'payment_in_progress') return false;
        state.cancelRefusedFor = orderId;
        render();
        return true;
      });
    });
    on('copies-minus', function () { state.copies -= 1; render(); });
    on('copies-plus', function () { state.copies += 1; render(); });
    on('pay', function () {
      var v = state.view;
      if (v && v.event) { act('/api/session/print', { copies: state.copies }); return; }
      act('/api/generate-qr', { copies: state.copies, session_id: v ? v.session_id : undefined });
    });
    on('pay-digital', function () {
      var v = state.view;
      act('/api/generate-qr', { digital_only: true, session_id: v ? v.session_id : undefined });
    });
    on('done-ok', function () { act('/api/session/dismiss'); });
    on('error-ok', function () { act('/api/session/dismiss'); });

    fitImages();
    mirrorInit();
    showSandboxBadge();
    // The loading screen stays until the words are here: everything after this draws with them.
    boothTexts.load('/ui/texts.json', function (texts) {
      TEXTS = texts;
      setInterval(tick, 200);
      connect();
      // Until the first view arrives, a plain request is often quicker than the stream.
      poll();
    });
  }

  // ---- Sandbox badge -------------------------------------------------------------------------
  // While payme.checkout_base is Payme's sandbox no real money is taken: a small "TEST" badge says
  // so on every screen. /api/status tells which; asked once (the setting changes only on restart).
  function showSandboxBadge() {
    fetch('/api/status', { cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        var badge = $('test-badge');
        if (badge) badge.hidden = !(s && s.payme_mode === 'sandbox');
      })
      .catch(function () { /* the next page load asks again */ });
  }

  init();
})();
