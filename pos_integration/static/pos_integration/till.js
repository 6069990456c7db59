/* The cashier's web till: device key -> cashier PIN -> scan or type a code -> earn or redeem.
 *
 * Talks only to the counter API of this origin (the page's CSP allows nothing else). The device key
 * lives in localStorage ("remember on this device") or sessionStorage, never in a URL; the cashier's
 * PIN only in memory, so a reload asks for it again. Every write carries an Idempotency-Key made once
 * per sale and reused when the cashier retries after no answer, so a retry can never earn twice.
 */
(function () {
  "use strict";

  // ---- Pure helpers (exposed on window.TesseraTill for the browser tests) ----------------------

  /** How an amount looks in a currency with this many decimals: 12, 12.5, 12.50, 12.500. */
  function exampleAmount(exponent) {
    return exponent > 0 ? "12." + "50".padEnd(exponent, "0").slice(0, exponent) : "12";
  }

  /** Major units typed by a person ("12.50", "12,5", "7") to exact minor units, without floats. */
  function parseAmount(text, exponent) {
    const typed = String(text == null ? "" : text).replace(/\s+/g, "");
    const example = exampleAmount(exponent);
    if (!typed) return {error: "Enter the amount of the sale."};
    const match = /^(\d*)(?:[.,](\d*))?$/.exec(typed);
    if (!match || !(match[1] + (match[2] || ""))) {
      return {error: "Enter the amount as a number, like " + example + " (no thousands separators)."};
    }
    const whole = match[1];
    const fraction = match[2] || "";
    if (fraction.length > exponent) {
      return {error: exponent === 0 ? "This currency has no decimals: enter a whole amount, like 12."
        : "At most " + exponent + " decimal" + (exponent === 1 ? "" : "s") + ", like " + example + "."};
    }
    const digits = (whole + fraction.padEnd(exponent, "0")).replace(/^0+/, "") || "0";
    if (digits.length > 10 || Number(digits) > 1000000000) return {error: "That amount is too large."};
    const minor = Number(digits); // at most 10 digits: an exact integer
    if (minor < 1) return {error: "Enter an amount above zero."};
    return {minor: minor};
  }

  /** Minor units back to a plain decimal string ("1250", 2 -> "12.50"). */
  function formatMinor(minor, exponent) {
    const digits = String(minor).padStart(exponent + 1, "0");
    return exponent > 0 ? digits.slice(0, -exponent) + "." + digits.slice(-exponent) : digits;
  }

  /** A random UUID; crypto.randomUUID exists only in secure contexts (not plain http on a LAN IP). */
  function newId() {
    const cryptoApi = window.crypto;
    if (cryptoApi && typeof cryptoApi.randomUUID === "function") return cryptoApi.randomUUID();
    const bytes = new Uint8Array(16);
    cryptoApi.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    const hex = Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  window.TesseraTill = Object.freeze({parseAmount: parseAmount, formatMinor: formatMinor, newId: newId});

  // ---- Page state ---------------------------------------------------------------------------

  const KEY_NAME = "tessera.till.deviceKey";
  const $ = function (id) { return document.getElementById(id); };
  const urls = document.body.dataset;
  const state = {
    deviceKey: null,
    device: null, // GET device/: {device, store, merchant, currency, currency_exponent, cashiers}
    cashier: null, // {id, name, pin}: in memory only
    customer: null, // the scan answer: {method, card, coupon}
    scannedCode: null, // what was scanned or typed: a token or coupon code is what redeems
    tokenUsed: false, // a pass token redeems once; the next redemption needs a fresh scan
    attempts: new Map(), // request identity -> {key, externalId}; kept until it succeeds
    earnUnknown: false, // the last earn got no answer: amount locked until it is retried
    leaveWarned: false,
    busy: false,
  };

  function setText(element, text) {
    element.textContent = text || "";
    element.hidden = !text;
  }

  function show(screen) {
    for (const id of ["loading", "setup", "signin", "counter"]) $(id).hidden = id !== screen;
  }

  // ---- Device key storage ---------------------------------------------------------------------

  function storages() {
    const found = [];
    for (const name of ["localStorage", "sessionStorage"]) {
      try { if (window[name]) found.push(window[name]); } catch (error) { /* storage disabled */ }
    }
    return found;
  }

  /** {key, remembered}: remembered when it is in localStorage (it outlives the tab). */
  function savedKey() {
    for (const storage of storages()) {
      try {
        const key = storage.getItem(KEY_NAME);
        if (key) return {key: key, remembered: storage === window.localStorage};
      } catch (error) { /* storage disabled */ }
    }
    return null;
  }

  function saveKey(key, remember) {
    for (const storage of storages()) {
      try { storage.removeItem(KEY_NAME); } catch (error) { /* storage disabled */ }
    }
    try { (remember ? window.localStorage : window.sessionStorage).setItem(KEY_NAME, key); } catch (error) {
      /* private mode: the key lasts as long as the page */
    }
  }

  function forgetKey() {
    for (const storage of storages()) {
      try { storage.removeItem(KEY_NAME); } catch (error) { /* storage disabled */ }
    }
    state.deviceKey = null;
    state.device = null;
  }

  // ---- API ----------------------------------------------------------------------------------

  /** One call to the counter API. Never throws: {ok, status, data} or {ok: false, unknown, error}. */
  async function api(url, options) {
    const opts = options || {};
    const headers = {"Accept": "application/json", "Authorization": "Device " + state.deviceKey};
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    const cashier = opts.cashier === true ? state.cashier : opts.cashier; // true: the signed-in one
    if (cashier) {
      headers["Tessera-Cashier"] = String(cashier.id);
      headers["Tessera-Cashier-Pin"] = cashier.pin;
    }
    if (opts.key) headers["Idempotency-Key"] = opts.key;
    let response;
    try {
      response = await fetch(url, {
        method: opts.method || "GET", headers: headers, credentials: "omit", cache: "no-store",
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
    } catch (error) {
      return {ok: false, status: 0, unknown: true,
        error: {code: "network", message: "No answer from the server: check the connection.", fields: {}}};
    }
    let data = null;
    try { data = await response.json(); } catch (error) { data = null; }
    if (response.ok) return {ok: true, status: response.status, data: data};
    const error = (data && data.error) || {code: "http_" + response.status, fields: {},
      message: "The server answered " + response.status + "."};
    error.fields = error.fields || {};
    // No answer we can trust: the write may or may not have happened, so a retry must reuse the key.
    const unknown = response.status >= 500 || error.code === "request_in_progress";
    if (response.status === 401) handleRevokedKey();
    return {ok: false, status: response.status, unknown: unknown, error: error};
  }

  function handleRevokedKey() {
    stopCamera();
    forgetKey();
    resetCustomer();
    state.cashier = null;
    $("device-line").hidden = true;
    $("place").textContent = "Tessera till";
    show("setup");
    setText($("setup-error"), "This device key is not valid or was revoked. Paste a current key.");
  }

  // ---- Setup: the device key --------------------------------------------------------------------

  async function connect(key, remember) {
    state.deviceKey = key;
    const answer = await api(urls.urlDevice);
    if (!answer.ok) {
      if (answer.status !== 401) {
        show("setup");
        setText($("setup-error"), answer.error.message);
      }
      return false;
    }
    if (remember !== undefined) saveKey(key, remember);
    state.device = answer.data;
    $("place").textContent = answer.data.merchant;
    setText($("device-line"), answer.data.store + " · " + answer.data.device);
    const select = $("cashier");
    select.replaceChildren();
    for (const cashier of answer.data.cashiers) {
      const option = document.createElement("option");
      option.value = String(cashier.id);
      option.textContent = cashier.name;
      select.append(option);
    }
    showSignin(answer.data.cashiers.length ? "" :
      "No cashier of this merchant has a PIN yet: ask a manager to set one.");
    return true;
  }

  async function onSetup(event) {
    event.preventDefault();
    if (state.busy) return;
    const key = $("device-key").value.trim() || state.deviceKey || "";
    if (!/^[\x21-\x7e]{8,200}$/.test(key)) {
      setText($("setup-error"), "Paste the whole device key, as it was shown when this till was registered.");
      return;
    }
    setText($("setup-error"), "");
    await busy($("setup-form"), function () { return connect(key, $("remember").checked); });
    $("device-key").value = "";
  }

  // ---- Cashier sign-in ------------------------------------------------------------------------

  function showSignin(message) {
    show("signin");
    $("pin").value = "";
    setText($("signin-error"), message || "");
    ($("cashier").options.length > 1 ? $("cashier") : $("pin")).focus();
  }

  async function onSignin(event) {
    event.preventDefault();
    if (state.busy) return;
    const id = $("cashier").value;
    const pin = $("pin").value.trim();
    if (!id) return setText($("signin-error"), "Pick a cashier.");
    if (!/^\d{4,8}$/.test(pin)) return setText($("signin-error"), "A PIN is 4 to 8 digits.");
    setText($("signin-error"), "");
    const answer = await busy($("signin-form"), function () {
      return api(urls.urlCheck, {method: "POST", cashier: {id: id, pin: pin}});
    });
    if (answer.ok) {
      state.cashier = {id: answer.data.cashier.id, name: answer.data.cashier.name, pin: pin};
      $("pin").value = "";
      showCounter();
      return;
    }
    if (answer.status === 401) return;
    $("pin").value = "";
    setText($("signin-error"), cashierMessage(answer.error));
    $("pin").focus();
  }

  function cashierMessage(error) {
    if (error.code === "cashier_pin_invalid") {
      const left = (error.fields.attempts_left || [])[0];
      if (left !== undefined) {
        const n = Number(left);
        return "Wrong PIN. " + n + " attempt" + (n === 1 ? "" : "s") + " left before this cashier is locked.";
      }
      return "Unknown cashier or wrong PIN.";
    }
    if (error.code === "cashier_locked") {
      const until = (error.fields.locked_until || [])[0];
      const when = until ? new Date(until) : null;
      return "Too many wrong PINs: this cashier is locked" +
        (when && !isNaN(when) ? " until " + when.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"}) : "") +
        ". Another cashier can sign in.";
    }
    return error.message;
  }

  function signOut(message) {
    stopCamera();
    resetCustomer();
    state.cashier = null;
    showSignin(message);
  }

  // ---- Counter: find the customer ---------------------------------------------------------------

  function showCounter() {
    show("counter");
    $("cashier-name").textContent = state.cashier.name;
    resetCustomer();
    $("code").focus();
  }

  function resetCustomer() {
    state.customer = null;
    state.scannedCode = null;
    state.tokenUsed = false;
    state.attempts.clear();
    state.leaveWarned = false;
    setEarnUnknown(false);
    $("customer").hidden = true;
    $("code").value = "";
    $("amount").value = "";
    for (const id of ["find-error", "result", "action-error"]) setText($(id), "");
  }

  function normaliseCode(raw) {
    const code = String(raw || "").trim();
    return /^[\d ]+$/.test(code) ? code.replace(/ /g, "") : code; // "8123 4567 ..." as printed
  }

  async function lookUp(raw, typed) {
    const code = normaliseCode(raw);
    if (!code) return setText($("find-error"), "Scan a code or type the card number.");
    if (!leaveCustomer()) return;
    setText($("find-error"), "");
    const answer = await busy($("find"), function () {
      return api(urls.urlScan, {method: "POST", body: {code: code}});
    });
    resetCustomer(); // a failed look-up must not leave the previous customer on screen to earn for
    if (!answer.ok) {
      if (answer.status === 401) return;
      if (typed) $("code").value = raw; // to fix a typo, not to type it all again
      setText($("find-error"), answer.error.message);
      return;
    }
    state.customer = answer.data;
    state.scannedCode = code;
    renderCustomer();
    $("customer").hidden = false;
    if (state.customer.card.status === "active") $("amount").focus();
  }

  /** Leaving a customer whose last sale got no answer takes a second press, so it is not lost unseen. */
  function leaveCustomer() {
    if (!state.earnUnknown || state.leaveWarned) return true;
    state.leaveWarned = true;
    showOutcome("action-error", "The last sale got no answer and may not be recorded. Press “Retry earn”, " +
      "or press again to leave it.");
    return false;
  }

  function renderCustomer() {
    const customer = state.customer;
    const card = customer.card;
    const device = state.device;
    $("customer-name").textContent = card.first_name || "Customer";
    setText($("customer-tier"), card.tier ? card.tier + " member" : "");
    $("balance").textContent = String(card.balance);
    $("card-closed").hidden = card.status === "active";
    $("earn-form").hidden = card.status !== "active";
    $("currency").textContent = device.currency;
    $("amount-hint").textContent = "In " + device.currency + ", for example " +
      exampleAmount(device.currency_exponent) + ".";

    const coupon = customer.coupon;
    $("coupon-box").hidden = !coupon;
    if (coupon) {
      const expires = new Date(coupon.expires_at);
      $("coupon-text").textContent = coupon.reward + " · " + coupon.status +
        (coupon.status === "issued" && !isNaN(expires) ? " · valid until " + expires.toLocaleString() : "");
      $("use-coupon").disabled = coupon.status !== "issued";
    }
    // A coupon's scan shows the coupon only: redeeming a reward needs the pass's live QR.
    $("rewards-box").hidden = customer.method === "coupon" || card.status !== "active";
    let hint = "";
    if (customer.method === "card_number") {
      hint = "To redeem, scan the live QR code on the customer's pass: a typed or printed card number cannot redeem.";
    } else if (state.tokenUsed) {
      hint = "This QR code was used to redeem: scan the pass again to redeem another reward.";
    }
    setText($("rewards-hint"), hint);
    const list = $("rewards");
    list.replaceChildren();
    for (const reward of card.rewards_redeemable) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.rewardId = String(reward.id);
      button.setAttribute("aria-label", "Redeem " + reward.name + " for " + reward.points_cost + " points");
      const name = document.createElement("span");
      name.textContent = reward.name;
      const cost = document.createElement("span");
      cost.textContent = reward.points_cost + " pts";
      button.append(name, cost);
      button.addEventListener("click", function () { redeem(reward); });
      item.append(button);
      list.append(item);
    }
    $("no-rewards").hidden = card.rewards_redeemable.length > 0;
  }

  /** After a write: the balance moved, so which rewards are affordable may have changed too. */
  async function refreshCard() {
    const answer = await api(urls.urlScan, {method: "POST", body: {code: state.customer.card.number}});
    if (answer.ok && state.customer && answer.data.card.number === state.customer.card.number) {
      state.customer.card = answer.data.card;
      renderCustomer();
    }
  }

  // ---- Counter: writes ----------------------------------------------------------------------

  /** The key and sale id of one request; the same request again (a retry) gets the same ones. */
  function attemptFor(identity) {
    if (!state.attempts.has(identity)) state.attempts.set(identity, {key: newId(), externalId: "web-" + newId()});
    return state.attempts.get(identity);
  }

  function setEarnUnknown(unknown) {
    state.earnUnknown = unknown;
    $("amount").readOnly = unknown;
    $("earn").textContent = unknown ? "Retry earn" : "Earn points";
    if (!unknown) state.leaveWarned = false;
  }

  async function write(url, identity, body) {
    const attempt = attemptFor(identity);
    const answer = await busy($("customer"), function () {
      return api(url, {method: "POST", cashier: true, key: attempt.key,
        body: typeof body === "function" ? body(attempt) : body});
    });
    if (answer.ok) state.attempts.delete(identity);
    if (!answer.ok && (answer.error.code === "cashier_pin_invalid" || answer.error.code === "cashier_locked")) {
      signOut(cashierMessage(answer.error) + " Sign in again.");
    }
    return answer;
  }

  /** The outcome of a tap, brought into view: on a phone the reward tapped may be far below it. */
  function showOutcome(id, text) {
    setText($(id === "result" ? "action-error" : "result"), "");
    setText($(id), text);
    if (text && $(id).scrollIntoView) $(id).scrollIntoView({block: "nearest"});
  }

  function showResult(text) {
    showOutcome("result", text);
  }

  function showFailure(answer, retryHint) {
    if (answer.status === 401 || $("counter").hidden) return;
    showOutcome("action-error", answer.unknown ? answer.error.message + " " + retryHint : answer.error.message);
  }

  async function onEarn(event) {
    event.preventDefault();
    if (state.busy || !state.customer) return;
    const device = state.device;
    const parsed = parseAmount($("amount").value, device.currency_exponent);
    if (parsed.error) return showOutcome("action-error", parsed.error);
    const number = state.customer.card.number;
    // Earning takes the static number: a pass token scanned a minute ago may have expired.
    const answer = await write(urls.urlPurchases, "earn|" + number + "|" + parsed.minor, function (attempt) {
      return {code: number, external_id: attempt.externalId, amount: parsed.minor, currency: device.currency};
    });
    if (answer.ok) {
      setEarnUnknown(false);
      $("amount").value = "";
      state.customer.card.balance = answer.data.balance;
      $("balance").textContent = String(answer.data.balance);
      const paid = formatMinor(parsed.minor, device.currency_exponent) + " " + device.currency;
      showResult("+" + answer.data.points_earned + " points for " + paid + ". New balance: " + answer.data.balance +
        " points.");
      await refreshCard();
      return;
    }
    setEarnUnknown(answer.unknown && !$("counter").hidden);
    showFailure(answer, "The sale may or may not be recorded: press “Retry earn”, it cannot earn twice.");
  }

  async function redeem(reward) {
    if (state.busy || !state.customer) return;
    const code = state.scannedCode;
    const answer = await write(urls.urlRedemptions, "redeem|" + code + "|" + reward.id,
      {code: code, reward_id: reward.id});
    if (answer.ok) {
      if (state.customer.method === "token") state.tokenUsed = true;
      state.customer.card.balance = answer.data.balance;
      $("balance").textContent = String(answer.data.balance);
      showResult("Redeemed " + answer.data.reward + " for " + answer.data.points + " points. New balance: " +
        answer.data.balance + " points.");
      await refreshCard();
      return;
    }
    showFailure(answer, "Press the reward again to retry: it cannot redeem twice.");
  }

  async function useCoupon() {
    if (state.busy || !state.customer || !state.customer.coupon) return;
    const code = state.customer.coupon.code;
    const answer = await write(urls.urlRedemptions, "coupon|" + code, {code: code});
    if (answer.ok) {
      state.customer.coupon.status = "used";
      renderCustomer();
      showResult("Coupon used: hand over " + answer.data.reward + ".");
      return;
    }
    showFailure(answer, "Press the button again to retry: the coupon cannot be used twice.");
  }

  /** Runs one request with the area's buttons disabled, so a double tap sends nothing twice. */
  async function busy(area, work) {
    state.busy = true;
    const controls = Array.from(area.querySelectorAll("button"));
    for (const control of controls) control.disabled = true;
    area.setAttribute("aria-busy", "true");
    try {
      return await work();
    } finally {
      state.busy = false;
      area.removeAttribute("aria-busy");
      for (const control of controls) control.disabled = false;
      if (state.customer && state.customer.coupon) $("use-coupon").disabled = state.customer.coupon.status !== "issued";
    }
  }

  // ---- Camera -------------------------------------------------------------------------------

  const camera = {stream: null, timer: null, engine: null, canvas: null};
  let decoderLoading = null;

  function loadDecoder() {
    if (window.ZXing) return Promise.resolve();
    if (!decoderLoading) {
      decoderLoading = new Promise(function (resolve, reject) {
        const script = document.createElement("script");
        script.src = urls.decoder; // same origin, vendored: the CSP allows nothing else
        script.onload = function () { resolve(); };
        script.onerror = function () { decoderLoading = null; reject(new Error("decoder did not load")); };
        document.head.append(script);
      });
    }
    return decoderLoading;
  }

  /** The browser's BarcodeDetector where it reads QR codes (Android, macOS), else the bundled ZXing. */
  async function chooseEngine() {
    if ("BarcodeDetector" in window) {
      try {
        const supported = await window.BarcodeDetector.getSupportedFormats();
        if (supported.includes("qr_code")) {
          const detector = new window.BarcodeDetector({
            formats: ["qr_code", "code_128"].filter(function (f) { return supported.includes(f); }),
          });
          return {name: "native", detect: async function (video) {
            const found = await detector.detect(video);
            return found.length ? found[0].rawValue : null;
          }};
        }
      } catch (error) { /* fall back to the bundled decoder */ }
    }
    await loadDecoder();
    const ZXing = window.ZXing;
    const reader = new ZXing.MultiFormatReader();
    const hints = new Map();
    hints.set(ZXing.DecodeHintType.POSSIBLE_FORMATS, [ZXing.BarcodeFormat.QR_CODE, ZXing.BarcodeFormat.CODE_128]);
    hints.set(ZXing.DecodeHintType.TRY_HARDER, true);
    reader.setHints(hints);
    camera.canvas = camera.canvas || document.createElement("canvas");
    const context = camera.canvas.getContext("2d", {willReadFrequently: true});
    // ZXing misses some codes at one particular size (about 1 frame in 12 in our tests) and reads them
    // at another, so successive frames are tried at a few scales: no code stays unreadable for long.
    const scales = [1, 0.8, 0.65, 0.5];
    let frame = 0;
    return {name: "bundled", detect: function (video) {
      const fit = Math.min(1, 960 / Math.max(video.videoWidth, video.videoHeight));
      const scale = fit * scales[frame++ % scales.length];
      const width = Math.round(video.videoWidth * scale);
      const height = Math.round(video.videoHeight * scale);
      if (!width || !height) return null;
      camera.canvas.width = width;
      camera.canvas.height = height;
      context.drawImage(video, 0, 0, width, height);
      const rgba = context.getImageData(0, 0, width, height).data;
      const luminance = new Uint8ClampedArray(width * height);
      for (let i = 0, p = 0; i < luminance.length; i += 1, p += 4) {
        luminance[i] = (rgba[p] * 77 + rgba[p + 1] * 150 + rgba[p + 2] * 29) >> 8;
      }
      const bitmap = new ZXing.BinaryBitmap(new ZXing.HybridBinarizer(
        new ZXing.RGBLuminanceSource(luminance, width, height)));
      try {
        return reader.decodeWithState(bitmap).getText();
      } catch (error) {
        // No readable code in this frame: try the next one. Anything else is a real failure.
        if (error instanceof ZXing.NotFoundException || error instanceof ZXing.ChecksumException ||
            error instanceof ZXing.FormatException) return null;
        throw error;
      } finally {
        reader.reset();
      }
    }};
  }

  function cameraProblem(error) {
    if (!window.isSecureContext) {
      return "The camera needs a secure (https) address, or localhost on this device: type the number instead.";
    }
    const name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return "The camera was not allowed: allow it for this site in the browser's settings, or type the number.";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") return "No camera found: type the number.";
    if (name === "NotReadableError") return "The camera is in use by another app: close it, or type the number.";
    return "The camera could not start: type the number instead.";
  }

  async function startCamera() {
    if (camera.stream || state.busy) return;
    setText($("find-error"), "");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      setText($("find-error"), cameraProblem(null));
      return;
    }
    $("camera").hidden = false;
    $("scan").hidden = true;
    $("camera-status").textContent = "Starting the camera…";
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({audio: false, video: {
        facingMode: {ideal: "environment"}, width: {ideal: 1280}, height: {ideal: 720}}});
    } catch (error) {
      stopCamera();
      setText($("find-error"), cameraProblem(error));
      return;
    }
    if ($("counter").hidden) { stream.getTracks().forEach(function (t) { t.stop(); }); return; }
    camera.stream = stream;
    const video = $("video");
    video.srcObject = stream;
    try { await video.play(); } catch (error) { /* autoplay of a muted inline video is allowed */ }
    try {
      camera.engine = await chooseEngine();
    } catch (error) {
      stopCamera();
      setText($("find-error"), "The barcode decoder could not load: type the number instead.");
      return;
    }
    if (!camera.stream) return; // stopped while the decoder loaded
    $("camera").dataset.engine = camera.engine.name;
    $("camera-status").textContent = "Hold the pass's QR code or the card's barcode in view.";
    scanFrame();
  }

  async function scanFrame() {
    camera.timer = null;
    if (!camera.stream) return;
    const video = $("video");
    if (video.readyState >= 2 && video.videoWidth) {
      let text = null;
      try {
        text = await camera.engine.detect(video);
      } catch (error) {
        stopCamera();
        setText($("find-error"), "The barcode decoder failed: type the number instead.");
        if (window.console) window.console.error(error);
        return;
      }
      if (!camera.stream) return;
      if (text) {
        stopCamera();
        if (navigator.vibrate) navigator.vibrate(60);
        await lookUp(text);
        return;
      }
    }
    camera.timer = window.setTimeout(scanFrame, 120);
  }

  function stopCamera() {
    if (camera.timer) window.clearTimeout(camera.timer);
    camera.timer = null;
    if (camera.stream) camera.stream.getTracks().forEach(function (track) { track.stop(); });
    camera.stream = null;
    $("video").srcObject = null;
    $("camera").hidden = true;
    $("scan").hidden = false;
  }

  // ---- Wiring -------------------------------------------------------------------------------

  function wire() {
    $("setup-form").addEventListener("submit", onSetup);
    $("signin-form").addEventListener("submit", onSignin);
    $("forget-device").addEventListener("click", function () {
      forgetKey();
      show("setup");
      setText($("setup-error"), "");
      $("device-key").focus();
    });
    $("sign-out").addEventListener("click", function () { if (leaveCustomer()) signOut(""); });
    $("code-form").addEventListener("submit", function (event) {
      event.preventDefault();
      if (!state.busy) lookUp($("code").value, true);
    });
    $("scan").addEventListener("click", startCamera);
    $("stop-camera").addEventListener("click", stopCamera);
    $("earn-form").addEventListener("submit", onEarn);
    $("use-coupon").addEventListener("click", useCoupon);
    $("next").addEventListener("click", function () {
      if (!leaveCustomer()) return;
      stopCamera();
      resetCustomer();
      $("code").focus();
    });
    $("amount").addEventListener("input", function () { setText($("action-error"), ""); });
    // A camera left running in a background tab drains the battery and films the counter.
    document.addEventListener("visibilitychange", function () { if (document.hidden) stopCamera(); });
    window.addEventListener("pagehide", stopCamera);
  }

  async function start() {
    wire();
    const saved = savedKey();
    if (!saved) {
      show("setup");
      $("device-key").focus();
      return;
    }
    $("remember").checked = saved.remembered;
    await connect(saved.key);
  }

  start();
})();
