// photoboothd service menu: the owner's screens on the kiosk (see src/booth/service_menu.rs and
// src/http/service.rs). A long press in the bottom-right corner of the attract (or out-of-service)
// screen opens a PIN pad; the right PIN opens the menu: today's and this month's figures, the
// printer, media, the event, the last orders (reprint), and the actions. Kept apart from app.js,
// which knows nothing of it: it builds its own DOM and talks only to /api/service/*.
// Without a PIN configured the daemon answers 404 and the corner does nothing visible.
'use strict';

(function () {
  var HOLD_MS = 2000;
  // An open menu nobody touches locks itself, so a guest never finds it open.
  var IDLE_CLOSE_MS = 120000;

  // The menu's words in uz/ru/en: service-texts.json, read through i18n.js.
  var TEXTS = null;
  boothTexts.load('/ui/service-texts.json', function (texts) { TEXTS = texts; });

  var svc = { screen: null, token: null, pin: '', summary: null, lastTouch: 0 };
  // For tests: which service screen shows (null, 'pin' or 'menu').
  window.boothService = svc;

  function lang() {
    var l = document.documentElement.lang;
    return TEXTS[l] ? l : 'uz';
  }

  function t(key, params) {
    return boothTexts.text(TEXTS, lang(), key, params);
  }

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'onclick') e.addEventListener('click', attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }

  function sum(tiyin) {
    return String(Math.floor(tiyin / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, '\u202f');
  }

  function request(method, path, body) {
    var headers = { 'content-type': 'application/json' };
    if (svc.token) headers.authorization = 'Bearer ' + svc.token;
    return fetch(path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined, credentials: 'same-origin' })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) { return { status: r.status, data: data }; });
      });
  }

  // ---------- the corner: a long press opens the PIN pad ----------

  var corner = el('div', { id: 'service-corner', 'aria-hidden': 'true' });
  var holdTimer = null;
  function cornerAllowed() {
    // Nothing to draw the PIN pad with until the words are here.
    if (!TEXTS) return false;
    var s = document.body.getAttribute('data-screen');
    return s === 'idle' || s === 'out_of_service';
  }
  corner.addEventListener('pointerdown', function (e) {
    e.stopPropagation();
    if (!cornerAllowed()) return;
    clearTimeout(holdTimer);
    holdTimer = setTimeout(openPin, HOLD_MS);
  });
  ['pointerup', 'pointerleave', 'pointercancel'].forEach(function (name) {
    corner.addEventListener(name, function () { clearTimeout(holdTimer); });
  });
  // A tap on the corner must not start a session underneath.
  corner.addEventListener('click', function (e) { e.stopPropagation(); });

  // ---------- the overlay that holds the PIN pad or the menu ----------

  var overlay = el('div', { id: 'service', class: 'svc-overlay', hidden: '' });
  overlay.addEventListener('click', function (e) { e.stopPropagation(); });
  overlay.addEventListener('pointerdown', function () { svc.lastTouch = Date.now(); });

  function show(screen) {
    svc.screen = screen;
    overlay.hidden = !screen;
    overlay.setAttribute('data-service', screen || '');
    document.body.classList.toggle('svc-open', !!screen);
    svc.lastTouch = Date.now();
  }

  function close() {
    if (svc.token) request('POST', '/api/service/lock');
    svc.token = null;
    svc.pin = '';
    svc.summary = null;
    overlay.innerHTML = '';
    show(null);
  }

  // Without a PIN the daemon has no service routes (404): then the corner does nothing.
  function openPin() {
    request('GET', '/api/service/summary').then(function (r) {
      if (r.status === 404) return;
      svc.pin = '';
      drawPin('');
      show('pin');
    }).catch(function () { /* the daemon is away; the page shows that already */ });
  }

  function drawPin(message) {
    overlay.innerHTML = '';
    var dots = el('div', { id: 'svc-pin-dots', class: 'svc-dots', text: svc.pin.replace(/./g, '●') || '\u00a0' });
    var keys = el('div', { class: 'svc-keys' });
    ['1', '2', '3', '4', '5', '6', '7', '8', '9', '⌫', '0', 'OK'].forEach(function (k) {
      var id = k === '⌫' ? 'svc-key-back' : k === 'OK' ? 'svc-key-ok' : 'svc-key-' + k;
      keys.appendChild(el('button', {
        type: 'button', id: id, class: 'btn svc-key' + (k === 'OK' ? ' btn-primary' : ' btn-secondary'), text: k === 'OK' ? t('ok') : k,
        onclick: function () { pinKey(k); }
      }));
    });
    overlay.appendChild(el('div', { class: 'svc-panel svc-pin' }, [
      el('h1', { class: 'title-m', text: t('pin_title') }),
      el('p', { class: 'note', text: t('pin_hint') }),
      dots,
      el('p', { id: 'svc-pin-message', class: 'svc-msg', text: message || '' }),
      keys,
      el('button', { type: 'button', id: 'svc-pin-close', class: 'btn btn-ghost', text: t('close'), onclick: close })
    ]));
  }

  function pinKey(k) {
    if (k === '⌫') svc.pin = svc.pin.slice(0, -1);
    else if (k === 'OK') return unlock();
    else if (svc.pin.length < 12) svc.pin += k;
    document.getElementById('svc-pin-dots').textContent = svc.pin.replace(/./g, '●') || '\u00a0';
  }

  function unlock() {
    var pin = svc.pin;
    svc.pin = '';
    request('POST', '/api/service/unlock', { pin: pin }).then(function (r) {
      if (r.status === 200) {
        svc.token = r.data.token;
        openMenu();
      } else if (r.status === 429) {
        drawPin(t('locked', { m: Math.ceil((r.data.retry_after_s || 300) / 60) }));
      } else {
        drawPin(t('wrong_pin'));
      }
    }).catch(function () { drawPin(t('failed')); });
  }

  // ---------- the menu ----------

  function openMenu() {
    show('menu');
    overlay.innerHTML = '';
    overlay.appendChild(el('div', { class: 'svc-panel svc-menu', id: 'svc-menu' }, [el('div', { class: 'spinner' })]));
    refresh();
  }

  function refresh() {
    request('GET', '/api/service/summary').then(function (r) {
      if (r.status === 401) { close(); return; }
      if (r.status !== 200) { toast(t('failed')); return; }
      svc.summary = r.data;
      drawMenu();
    }).catch(function () { toast(t('failed')); });
  }

  function action(path, body) {
    request('POST', path, body).then(function (r) {
      if (r.status === 401) { close(); return; }
      toast(r.status === 200 ? t('done') : t('failed') + (r.data && r.data.error ? ': ' + r.data.error : ''));
      refresh();
    }).catch(function () { toast(t('failed')); });
  }

  function toast(text) {
    var m = document.getElementById('svc-message');
    if (m) m.textContent = text;
  }

  function figures(title, p) {
    var rows = [
      ['sessions', p.sessions], ['paid_orders', p.paid_orders], ['revenue', sum(p.revenue_tiyin)],
      ['refunds', p.refunds], ['prints', p.prints], ['event_prints', p.event_prints]
    ];
    return el('table', { class: 'svc-figures' }, [el('caption', { text: title })].concat(rows.map(function (row) {
      return el('tr', { 'data-figure': row[0] }, [el('th', { text: t(row[0]) }), el('td', { text: String(row[1]) })]);
    })));
  }

  function button(id, text, onclick, primary) {
    return el('button', { type: 'button', id: id, class: 'btn svc-btn ' + (primary ? 'btn-primary' : 'btn-secondary'), text: text, onclick: onclick });
  }

  function drawMenu() {
    var s = svc.summary;
    var panel = document.getElementById('svc-menu');
    if (!s || !panel) return;
    panel.innerHTML = '';
    var pr = s.printer;
    var printerLine = t('printer') + ': ' + (s.blocker ? t('not_ready') + ' (' + s.blocker.message + ')' : t('ready')) +
      (pr.reasons && pr.reasons.length ? ' · ' + pr.reasons.join(', ') : '');
    var media = t('media_left') + ': ' + (pr.media_left == null ? t('not_counted') : pr.media_left + ' / ' + pr.media_capacity);
    var camera = t('camera') + ': ' + (s.camera.ready ? t('ready') : t('not_ready') + ' (' + (s.camera.last_error || '') + ')');
    var ev = s.event;
    var eventLine = ev
      ? t('event') + ': ' + (ev.title || '—') + (ev.date ? ' · ' + ev.date : '') + ' · ' + ev.prints_used + ' ' + t('used') +
        (ev.prints_left != null ? ' · ' + ev.prints_left + ' ' + t('left') : '')
      : t('no_event');
    var orders = el('div', { class: 'svc-orders' }, [el('h2', { text: t('last_orders') })].concat(s.last_orders.map(function (o) {
      var deliverable = ['paid', 'printing', 'printed', 'print_failed'].indexOf(o.status) >= 0;
      return el('div', { class: 'svc-order', 'data-order': String(o.order_id) }, [
        el('span', { text: '№ ' + o.order_id + ' · ' + t('copies', { n: o.copies }) + ' · ' + (o.event_id ? t('event') : sum(o.amount_tiyin)) + ' · ' + (t('status_' + o.status) || o.status) }),
        deliverable ? button('svc-reprint-' + o.order_id, t('reprint'), function () { action('/api/service/reprint', { order_id: o.order_id }); }) : null
      ]);
    })));
    var eventForm = ev
      ? el('div', { class: 'svc-event' }, [button('svc-event-stop', t('event_stop'), function () { action('/api/service/event/stop'); })])
      : el('div', { class: 'svc-event' }, [
        el('label', { text: t('max_prints') }, [el('input', { id: 'svc-event-max', type: 'number', min: '0', value: '100', inputmode: 'numeric' })]),
        el('label', { text: t('title') }, [el('input', { id: 'svc-event-title', type: 'text', maxlength: '80' })]),
        el('label', { text: t('date') }, [el('input', { id: 'svc-event-date', type: 'text', maxlength: '80' })]),
        button('svc-event-start', t('event_start'), function () {
          action('/api/service/event/start', {
            max_prints: parseInt(document.getElementById('svc-event-max').value, 10) || 0,
            title: document.getElementById('svc-event-title').value,
            date: document.getElementById('svc-event-date').value
          });
        })
      ]);
    // While an event runs (and digital copies are on): one QR code for every photo of the event.
    var g = ev && s.gallery;
    var gallery = g ? el('div', { class: 'svc-gallery', id: 'svc-gallery' }, [
      g.qr_png ? el('img', { id: 'svc-gallery-qr', class: 'svc-qr', src: g.qr_png, alt: '' }) : null,
      el('div', {}, [
        el('p', { class: 'svc-state', text: t('gallery', { d: g.keep_days }) }),
        el('p', { class: 'svc-url', id: 'svc-gallery-url', text: g.url })
      ])
    ]) : null;
    [
      el('div', { class: 'svc-head' }, [
        el('h1', { class: 'title-m', text: t('pin_title') }),
        button('svc-lock', t('lock'), close, true)
      ]),
      el('p', { id: 'svc-message', class: 'svc-msg' }),
      el('div', { class: 'svc-columns' }, [figures(t('today'), s.today), figures(t('month'), s.month)]),
      el('p', { class: 'svc-state', id: 'svc-printer', text: printerLine }),
      el('p', { class: 'svc-state', text: media }),
      el('p', { class: 'svc-state', text: camera }),
      el('div', { class: 'svc-actions' }, [
        button('svc-refill', t('refill'), function () { action('/api/service/refill'); }),
        button('svc-test-print', t('test_print'), function () { action('/api/service/test-print'); }),
        button('svc-resume', t('resume'), function () { action('/api/service/resume'); })
      ]),
      el('p', { class: 'svc-state', id: 'svc-event-line', text: eventLine }),
      gallery,
      eventForm,
      orders
    ].forEach(function (c) { if (c) panel.appendChild(c); });
  }

  setInterval(function () {
    if (svc.screen && Date.now() - svc.lastTouch > IDLE_CLOSE_MS) close();
  }, 5000);

  document.body.appendChild(corner);
  document.body.appendChild(overlay);
})();
