/*
 * CityopsSm2 — seal a login password with the server's SM2 public key (登录密码 SM2 加密).
 *
 * Produces exactly what spatial/security/login_envelope.py seal_password() does:
 *   "sm2:" + hex(SM2-encrypt(JSON.stringify({p: password, t: Date.now(), n: 16 random bytes hex})))
 * with cipher mode 1 (C1C3C2) and C1 without the "04" prefix (sm-crypto's doEncrypt output).
 *
 * Browser: load /static/vendor/sm-crypto/sm2.js first (it defines the global `sm2`), then this
 * file; call CityopsSm2.sealPassword(publicKeyHex, password). Node: require() this file.
 * ES5 only, no network access: works offline on government intranets.
 */
(function (root, factory) {
  'use strict';
  if (typeof module === 'object' && module.exports) {
    module.exports = factory(
      function () { return require('../vendor/sm-crypto/sm2.js'); },
      function (n) { return new Uint8Array(require('crypto').randomBytes(n)); }
    );
  } else {
    root.CityopsSm2 = factory(
      function () { return root.sm2; },
      function (n) {
        var c = root.crypto || root.msCrypto;
        if (!c || !c.getRandomValues) { throw new Error('crypto.getRandomValues is unavailable'); }
        return c.getRandomValues(new Uint8Array(n));
      }
    );
  }
}(typeof self !== 'undefined' ? self : this, function (getSm2, randomBytes) {
  'use strict';

  var PREFIX = 'sm2:';
  var CIPHER_MODE_C1C3C2 = 1;

  function toHex(bytes) {
    var out = '';
    for (var i = 0; i < bytes.length; i++) {
      out += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
    }
    return out;
  }

  /** The server key as sm-crypto wants it: "04" + x + y (accepts x + y without "04"). */
  function normalisePublicKey(publicKeyHex) {
    var key = String(publicKeyHex || '').replace(/\s+/g, '').toLowerCase();
    if (key.length === 128) { key = '04' + key; }
    if (!/^04[0-9a-f]{128}$/.test(key)) { throw new Error('not an SM2 public key'); }
    return key;
  }

  /** The envelope plaintext (same bytes as login_envelope.envelope_json in Python). */
  function envelopeJson(password, issuedMs, nonceHex) {
    return JSON.stringify({ p: String(password), t: issuedMs, n: nonceHex });
  }

  /** Seal a password: "sm2:" + C1C3C2 hex. nowMs is optional (defaults to Date.now()). */
  function sealPassword(publicKeyHex, password, nowMs) {
    var sm2 = getSm2();
    if (!sm2 || typeof sm2.doEncrypt !== 'function') {
      throw new Error('sm-crypto sm2.js is not loaded');
    }
    var issued = typeof nowMs === 'number' ? Math.floor(nowMs) : Date.now();
    var plain = envelopeJson(password, issued, toHex(randomBytes(16)));
    return PREFIX + sm2.doEncrypt(plain, normalisePublicKey(publicKeyHex), CIPHER_MODE_C1C3C2);
  }

  return {
    PREFIX: PREFIX,
    sealPassword: sealPassword,
    envelopeJson: envelopeJson,
    normalisePublicKey: normalisePublicKey
  };
}));
