// photoboothd UI texts: the kiosk page's and the service menu's words in uz/ru/en are data, one
// JSON table each (texts.json, service-texts.json, served from /ui/ like this file). This file
// loads a table and looks texts up in it, the one way app.js and service.js both use.
//
// A text is a string whose {name} placeholders are filled from the caller's params, or, where a
// word follows a number, an object of that number's plural forms by CLDR category
// (Intl.PluralRules): {"plural": "n", "one": "{n} print", "other": "{n} prints"}. Any other value
// (the error screens' title and body pairs) is given back as it is.
'use strict';

window.boothTexts = (function () {
  // The daemon serves the page, so a table that does not come is a restart under way.
  var RETRY_MS = 1000;

  // Calls done(table) once the table at url is read, trying again until it is.
  function load(url, done) {
    fetch(url, { cache: 'no-store' })
      .then(function (r) {
        if (!r.ok) throw new Error(url + ': HTTP ' + r.status);
        return r.json();
      })
      .then(done, function () { setTimeout(function () { load(url, done); }, RETRY_MS); });
  }

  function fill(text, params) {
    return text.replace(/\{(\w+)\}/g, function (whole, name) {
      return params[name] === undefined ? whole : String(params[name]);
    });
  }

  // The text `key` in `lang`, in English where `lang` has none; undefined where English has none.
  function text(table, lang, key, params) {
    var own = table[lang] !== undefined && table[lang][key] !== undefined;
    var value = own ? table[lang][key] : table.en[key];
    params = params || {};
    if (value && value.plural) {
      var form = new Intl.PluralRules(own ? lang : 'en').select(params[value.plural]);
      value = value[form] !== undefined ? value[form] : value.other;
    }
    return typeof value === 'string' ? fill(value, params) : value;
  }

  return { load: load, text: text };
})();
