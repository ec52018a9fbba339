/*
 * qa-service chat widget: cited answers from news articles, Arabic-first, streaming.
 *
 * Embed with one line:
 *   <script src="https://qa.example.org/widget.js" data-endpoint="https://qa.example.org"></script>
 * which adds a floating launcher and chat panel, or place <qa-chat></qa-chat> where the chat
 * should appear inline (add data-launcher="false" to the script tag to skip the launcher).
 *
 * Script attributes (each also settable on <qa-chat> without the "data-" prefix):
 *   data-endpoint  service base URL or the full /v1/ask URL (default: the folder widget.js came from)
 *   data-api-key   a public, origin-bound key, sent as "Authorization: Bearer <key>"
 *   data-lang      "ar" or "en": pin the interface language (default: the question's, else the page's)
 *   data-top-k     passages per answer
 *   data-launcher  "false": no floating launcher
 *
 * Safety: every piece of model or document text is set with textContent, never parsed as
 * HTML; links are http(s) only; bidi control characters are stripped from titles and links;
 * styles come from widget.css adopted into the Shadow DOM, so a host page with a strict
 * Content-Security-Policy (no inline script or style) works. No build step.
 */
(() => {
  "use strict";

  const ELEMENT_NAME = "qa-chat";
  if (window.customElements.get(ELEMENT_NAME)) return; // widget.js included twice

  const SCRIPT = document.currentScript;
  const SCRIPT_URL = new URL(SCRIPT && SCRIPT.src ? SCRIPT.src : "widget.js", document.baseURI);
  const SCRIPT_DATA = SCRIPT ? { ...SCRIPT.dataset } : {};
  const STYLESHEET_URL = new URL("widget.css", SCRIPT_URL).href;
  const ASK_PATH = "/v1/ask";
  const STORAGE_PREFIX = "qa-chat:v1:";
  const MAX_QUESTION_CHARS = 2000; // the service's default QA_MAX_QUESTION_CHARS
  // Earlier exchanges sent with a follow-up question: the most recent ones, well inside the
  // service's default limits (QA_MAX_HISTORY_TURNS=20 messages, QA_MAX_HISTORY_CHARS=20000).
  const HISTORY_TURNS = 6;
  const HISTORY_MESSAGE_CHARS = 2000; // each history message is cut to this length
  const HISTORY_TOTAL_CHARS = 8000;
  const QUOTE_FOLD_CHARS = 240; // longer quotes start folded...
  const QUOTE_PREVIEW_CHARS = 160; // ...showing about this much, cut at a word boundary
  const STREAM_IDLE_TIMEOUT_MS = 60000; // a stream silent this long is treated as dropped
  const DEFAULT_RETRY_S = 5; // when a 429 carries no readable Retry-After
  const SCROLL_MARGIN_PX = 8; // space kept around what is scrolled into view in the log
  const SVG_NS = "http://www.w3.org/2000/svg";

  // Embedding/override/isolate controls can disguise text ("gnp.exe" shown as "exe.png");
  // marks (LRM, RLM, ALM) are legitimate in Arabic prose but never in titles or links.
  const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;
  const BIDI_CONTROLS_AND_MARKS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
  const ARABIC_LETTER = /[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]/g;
  const LATIN_LETTER = /[A-Za-z]/g;
  const MARKER = /\[(\d{1,3})\]/g;
  const OPENING_QUOTES = "«“\"'‹„";
  const CLOSING_QUOTES = "»”\"'›“";

  const STRINGS = {
    en: {
      title: "Ask the news",
      launcher: "Ask",
      launcherLabel: "Ask a question about the news",
      close: "Close",
      newConversation: "New conversation",
      intro: "Ask a question in English or Arabic. Every answer cites the articles it comes from.",
      label: "Your question",
      placeholder: "Ask a question…",
      send: "Send",
      you: "You asked",
      thinking: "Searching the articles…",
      sources: "Sources",
      asOf: (date) => `as of ${date}`,
      openArticle: "Open article",
      opensNewTab: "(opens in a new tab)",
      showMore: "Show full quote",
      showLess: "Show less",
      citeLabel: (n, title) => `Source ${n}: ${title}`,
      abstained: "Not found in the sources",
      answerReady: (n) => (n === 1 ? "Answer ready, 1 source." : `Answer ready, ${n} sources.`),
      noAnswerReady: "No answer found in the sources.",
      started: "New conversation started.",
      retry: "Try again",
      retrying: (s) => `Trying again in ${s} s…`,
      busy: (s) => `Many people are asking right now. Please try again in ${s} seconds.`,
      busyNoDelay: "Many people are asking right now. Please try again in a moment.",
      unavailable: "The service is busy or starting up. Please try again in a moment.",
      network: "Couldn’t reach the service. Check your connection and try again.",
      interrupted: "The answer was interrupted. Please try again.",
      denied: "This site isn’t allowed to use the question service. Please contact the site.",
      rejected: (detail) => `The question couldn’t be sent: ${detail}`,
      misconfigured: "The chat is not set up correctly (its endpoint must be an http(s) URL).",
      tooLong: `Questions can have at most ${MAX_QUESTION_CHARS} characters.`,
      readAs: (text) => `Read with the conversation: ${text}`,
    },
    ar: {
      title: "اسأل الأخبار",
      launcher: "اسأل",
      launcherLabel: "اطرح سؤالًا عن الأخبار",
      close: "إغلاق",
      newConversation: "محادثة جديدة",
      intro: "اطرح سؤالك بالعربية أو بالإنجليزية. كل إجابة تذكر المقالات التي أُخذت منها.",
      label: "سؤالك",
      placeholder: "اكتب سؤالك…",
      send: "إرسال",
      you: "سألت",
      thinking: "جارٍ البحث في المقالات…",
      sources: "المصادر",
      asOf: (date) => `حتى ${date}`,
      openArticle: "فتح المقال",
      opensNewTab: "(يفتح في علامة تبويب جديدة)",
      showMore: "عرض الاقتباس كاملًا",
      showLess: "عرض أقل",
      citeLabel: (n, title) => `المصدر ${n}: ${title}`,
      abstained: "لم تُعثر على الإجابة في المصادر",
      answerReady: (n) => (n === 1 ? "الإجابة جاهزة، مصدر واحد." : `الإجابة جاهزة، عدد المصادر: ${n}.`),
      noAnswerReady: "لم تُعثر على إجابة في المصادر.",
      started: "بدأت محادثة جديدة.",
      retry: "حاول مجددًا",
      retrying: (s) => `إعادة المحاولة بعد ${s} ث…`,
      busy: (s) => `الطلبات كثيرة الآن. يُرجى المحاولة مجددًا بعد ${s} ثانية.`,
      busyNoDelay: "الطلبات كثيرة الآن. يُرجى المحاولة مجددًا بعد قليل.",
      unavailable: "الخدمة مشغولة أو قيد التشغيل. يُرجى المحاولة مجددًا بعد قليل.",
      network: "تعذّر الوصول إلى الخدمة. تحقّق من الاتصال وحاول مجددًا.",
      interrupted: "انقطعت الإجابة. يُرجى المحاولة مجددًا.",
      denied: "هذا الموقع غير مسموح له باستخدام خدمة الأسئلة. يُرجى التواصل مع الموقع.",
      rejected: (detail) => `تعذّر إرسال السؤال: ${detail}`,
      misconfigured: "لم تُضبط المحادثة بشكل صحيح (يجب أن يكون عنوانها http أو https).",
      tooLong: `لا يتجاوز السؤال ${MAX_QUESTION_CHARS} حرف.`,
      readAs: (text) => `فُهم مع المحادثة: ${text}`,
    },
  };

  // -- small pure helpers -----------------------------------------------------------------

  /** Text for titles, outlets, dates and links: no bidi controls or marks, trimmed. */
  function cleanLabel(value) {
    return typeof value === "string" ? value.replace(BIDI_CONTROLS_AND_MARKS, "").trim() : "";
  }

  /** Prose (answers, quotes): overrides and isolates removed, Arabic marks kept. */
  function cleanProse(value) {
    return typeof value === "string" ? value.replace(BIDI_CONTROLS, "") : "";
  }

  /** An http(s) URL as a string, or null for anything else (javascript:, data:, garbage). */
  function safeHttpUrl(value) {
    const cleaned = cleanLabel(value);
    if (!cleaned) return null;
    let url;
    try {
      url = new URL(cleaned);
    } catch (_) {
      return null;
    }
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  }

  /** "ar" when the text is mostly Arabic letters, "en" when mostly Latin, else null. */
  function textLanguage(text) {
    const arabic = (text.match(ARABIC_LETTER) || []).length;
    const latin = (text.match(LATIN_LETTER) || []).length;
    if (!arabic && !latin) return null;
    return arabic >= latin ? "ar" : "en";
  }

  function uiLanguageOf(tag) {
    const primary = String(tag || "").trim().toLowerCase().split(/[-_]/)[0];
    return primary === "ar" ? "ar" : primary === "en" ? "en" : null;
  }

  /** A language code fit for a lang attribute, or "" (the service reports e.g. "ar", "en"). */
  function langAttribute(code) {
    return typeof code === "string" && /^[a-z]{2,3}$/.test(code) ? code : "";
  }

  /** Non-overlapping [start, end) spans of ``text`` holding a citation's quote, outlet or title. */
  function isolatedSpans(text, citations) {
    const needles = [];
    for (const c of citations) {
      for (const value of [c.quote, c.source, c.title]) {
        if (typeof value === "string" && value.trim().length > 1) needles.push(value);
      }
    }
    needles.sort((a, b) => b.length - a.length); // a quote wins over a name inside it
    const spans = [];
    for (const needle of needles) {
      for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + needle.length)) {
        let start = at;
        let end = at + needle.length;
        // Quote marks around the span belong to it: an Arabic quote keeps «…» at its own ends.
        if (OPENING_QUOTES.includes(text[start - 1]) && CLOSING_QUOTES.includes(text[end])) {
          start -= 1;
          end += 1;
        }
        if (!spans.some(([s, e]) => start < e && end > s)) spans.push([start, end]);
      }
    }
    return spans.sort((a, b) => a[0] - b[0]);
  }

  /** The answer's paragraphs as the service lays them out (``blocks``), checked; [] when absent. */
  function answerBlocks(result) {
    if (!result || !Array.isArray(result.blocks)) return [];
    const out = [];
    for (const b of result.blocks) {
      if (!b || typeof b.text !== "string" || !b.text) continue;
      const kind = b.kind === "lead" || b.kind === "quote" ? b.kind : "text";
      const dir = b.dir === "rtl" ? "rtl" : "ltr";
      const citations = Array.isArray(b.citations) ? b.citations.map(Number).filter(Number.isInteger) : [];
      out.push({ kind, text: b.text, dir, lang: langAttribute(b.lang), citations });
    }
    return out;
  }

  /** What the service read a follow-up as (shown under the question), or null. */
  function followupNote(result) {
    const f = result && result.followup;
    if (!f || f.resolved !== true) return null;
    const carried = Array.isArray(f.carried) ? f.carried.filter((w) => typeof w === "string") : [];
    const text = carried.length ? carried.join(" · ") : typeof f.question === "string" ? f.question : "";
    return cleanProse(text).trim() || null;
  }

  /** Seconds from a Retry-After header (delta-seconds or an HTTP date), or null. */
  function retryAfterSeconds(header) {
    if (!header) return null;
    const trimmed = header.trim();
    if (/^\d+$/.test(trimmed)) return Math.max(1, parseInt(trimmed, 10));
    const when = Date.parse(trimmed);
    return Number.isNaN(when) ? null : Math.max(1, Math.ceil((when - Date.now()) / 1000));
  }

  function formatDate(value, lang) {
    const raw = cleanLabel(value);
    if (!raw) return "";
    const date = new Date(raw);
    if (Number.isNaN(date.getTime())) return raw;
    try {
      // Western digits in both languages, like the articles and answers they sit beside.
      return new Intl.DateTimeFormat(lang, {
        year: "numeric", month: "long", day: "numeric", timeZone: "UTC", numberingSystem: "latn",
      }).format(date);
    } catch (_) {
      return raw.slice(0, 10);
    }
  }

  /** The ask URL for an endpoint setting (a base URL or the /v1/ask URL itself), or null. */
  function askUrlFor(endpoint) {
    let url;
    try {
      url = new URL(endpoint || new URL(".", SCRIPT_URL).href, document.baseURI);
    } catch (_) {
      return null;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    url.search = "";
    url.hash = "";
    if (!url.pathname.endsWith(ASK_PATH)) url.pathname = url.pathname.replace(/\/+$/, "") + ASK_PATH;
    return url.href;
  }

  /** Server-sent events from a fetch body: yields {event, data} per dispatched event. */
  async function* readEvents(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let pending = "";
    let event = "message";
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      let text = pending + (done ? decoder.decode() : decoder.decode(value, { stream: true }));
      // A trailing CR may be the first half of CRLF: keep it until the next chunk decides.
      const heldCR = !done && text.endsWith("\r");
      if (heldCR) text = text.slice(0, -1);
      const lines = text.split(/\r\n|\r|\n/);
      pending = done ? "" : lines.pop() + (heldCR ? "\r" : "");
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield { event, data: data.join("\n") };
          event = "message";
          data = [];
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let val = colon < 0 ? "" : line.slice(colon + 1);
          if (val.startsWith(" ")) val = val.slice(1);
          if (field === "event") event = val;
          else if (field === "data") data.push(val);
        }
      }
      if (done) {
        if (data.length) yield { event, data: data.join("\n") };
        return;
      }
    }
  }

  class RequestFailure extends Error {
    constructor(kind, detail, retryAfter) {
      super(kind);
      this.kind = kind; // "busy" | "unavailable" | "network" | "interrupted" | "denied" | "rejected"
      this.detail = detail || "";
      this.retryAfter = retryAfter;
    }
  }

  async function problemDetail(response) {
    try {
      const body = await response.json();
      return body && typeof body.detail === "string" ? body.detail : "";
    } catch (_) {
      return "";
    }
  }

  async function failureFor(response) {
    const status = response.status;
    if (status === 429) return new RequestFailure("busy", "", retryAfterSeconds(response.headers.get("Retry-After")));
    if (status === 401 || status === 403) return new RequestFailure("denied", await problemDetail(response));
    if (status === 408 || status >= 500) {
      return new RequestFailure("unavailable", "", retryAfterSeconds(response.headers.get("Retry-After")));
    }
    return new RequestFailure("rejected", await problemDetail(response));
  }

  function svgIcon(paths) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "20");
    svg.setAttribute("height", "20");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    for (const d of paths) {
      const path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("d", d);
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", "currentColor");
      path.setAttribute("stroke-width", "2");
      path.setAttribute("stroke-linecap", "round");
      path.setAttribute("stroke-linejoin", "round");
      svg.append(path);
    }
    return svg;
  }

  const ICON_CHAT = ["M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z"];
  const ICON_CLOSE = ["M6 6l12 12", "M18 6L6 18"];
  const ICON_NEW = ["M12 5v14", "M5 12h14"];
  const ICON_SEND = ["M4 12l16-8-6 16-2.5-6.5z"];

  function el(tag, props, children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === null || value === undefined || value === false || (value === "" && key !== "text")) continue;
        if (key === "text") node.textContent = value;
        else if (key === "className") node.className = value;
        else node.setAttribute(key, value === true ? "" : String(value));
      }
    }
    if (children) node.append(...children.filter(Boolean));
    return node;
  }

  // One stylesheet shared by every widget on the page: fetched once, adopted into each shadow
  // root (constructed sheets are not inline styles, so a strict style-src does not block them).
  let sharedSheet = null;
  function loadStylesheet() {
    if (!sharedSheet) {
      sharedSheet = fetch(STYLESHEET_URL, { credentials: "omit" })
        .then((response) => {
          if (!response.ok) throw new Error(`widget.css: HTTP ${response.status}`);
          return response.text();
        })
        .then((css) => {
          const sheet = new CSSStyleSheet();
          sheet.replaceSync(css);
          return sheet;
        });
    }
    return sharedSheet;
  }

  // -- the element -----------------------------------------------------------------------

  let instances = 0;

  class QAChat extends HTMLElement {
    constructor() {
      super();
      this.uid = `qa${++instances}`;
      this.turns = []; // {question, answer?: {answer, abstained, answer_language, citations}, error?}
      this.controller = null;
      this.built = false;
    }

    connectedCallback() {
      if (this.built) return;
      this.built = true;
      const shadow = this.attachShadow({ mode: "open" });
      this.floating = this.hasAttribute("floating");
      this.askUrl = askUrlFor(this.setting("endpoint"));
      this.apiKey = this.setting("api-key");
      this.pinnedLang = uiLanguageOf(this.setting("lang"));
      this.topK = parseInt(this.setting("top-k"), 10) || null;
      this.storageKey = `${STORAGE_PREFIX}${this.askUrl}:${this.getAttribute("storage-key") || (this.floating ? "floating" : "inline")}`;
      this.build();
      const reveal = () => {
        shadow.append(this.root);
        if (this.turns.length) this.scrollToTurn(this.turns[this.turns.length - 1]);
      };
      loadStylesheet()
        .then((sheet) => {
          shadow.adoptedStyleSheets = [sheet];
          reveal();
        })
        .catch(() => {
          // No CORS or connect-src for the stylesheet: a <link> may still be allowed by style-src.
          shadow.append(el("link", { rel: "stylesheet", href: STYLESHEET_URL }));
          reveal();
        });
    }

    /** An attribute of this element, else the script tag's data-… attribute, else "". */
    setting(name) {
      const own = this.getAttribute(name);
      if (own !== null && own !== "") return own;
      const key = name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
      return SCRIPT_DATA[key] || "";
    }

    disconnectedCallback() {
      if (this.controller) this.controller.abort();
    }

    get strings() {
      return STRINGS[this.lang];
    }

    // -- structure ---------------------------------------------------------------------

    build() {
      const id = (name) => `${this.uid}-${name}`;
      this.titleEl = el("h2", { id: id("title"), className: "title" });
      this.newButton = el("button", { type: "button", className: "icon-button new" }, [svgIcon(ICON_NEW), el("span")]);
      this.newButton.addEventListener("click", () => this.newConversation());
      const headerButtons = [this.newButton];
      if (this.floating) {
        this.closeButton = el("button", { type: "button", className: "icon-button close" }, [svgIcon(ICON_CLOSE)]);
        this.closeButton.addEventListener("click", () => this.setOpen(false, true));
        headerButtons.push(this.closeButton);
      }
      this.log = el("div", { className: "log", role: "log", "aria-live": "polite", "aria-labelledby": id("title"), tabindex: "0" });
      this.intro = el("p", { className: "intro" });
      this.status = el("p", { className: "sr-only", role: "status" });
      this.input = el("textarea", {
        id: id("q"), className: "question-input", dir: "auto", rows: "2", maxlength: String(MAX_QUESTION_CHARS),
        autocomplete: "off", enterkeyhint: "send",
      });
      this.inputLabel = el("label", { for: id("q"), className: "sr-only" });
      this.sendButton = el("button", { type: "submit", className: "send" }, [svgIcon(ICON_SEND), el("span", { className: "sr-only" })]);
      this.form = el("form", { className: "composer" }, [this.inputLabel, this.input, this.sendButton]);
      this.form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.submit();
      });
      this.input.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          this.submit();
        }
      });
      this.panel = el("section", {
        id: id("panel"), className: "panel", "aria-labelledby": id("title"),
        role: this.floating ? "dialog" : "region",
      }, [el("header", { className: "header" }, [this.titleEl, el("div", { className: "header-buttons" }, headerButtons)]),
        this.log, this.status, this.form]);
      this.root = el("div", { className: `root ${this.floating ? "floating" : "inline"}` });
      if (this.floating) {
        this.launcher = el("button", { type: "button", className: "launcher", "aria-controls": id("panel"), "aria-expanded": "false" },
          [svgIcon(ICON_CHAT), el("span")]);
        this.launcher.addEventListener("click", () => this.setOpen(this.panel.hidden, true));
        this.root.addEventListener("keydown", (event) => {
          if (event.key === "Escape" && !this.panel.hidden) {
            event.preventDefault();
            this.setOpen(false, true);
          }
        });
        this.root.append(this.panel, this.launcher);
      } else {
        this.root.append(this.panel);
      }
      this.restore();
      this.applyLanguage();
      this.renderAll();
      if (this.floating) this.setOpen(this.restoredOpen, false);
    }

    setOpen(open, moveFocus) {
      this.panel.hidden = !open;
      this.launcher.setAttribute("aria-expanded", String(open));
      this.toggleAttribute("open", open);
      this.save();
      if (!moveFocus) return;
      if (open) this.input.focus();
      else this.launcher.focus();
    }

    /** Interface language: pinned by attribute, else the last question's, else the page's. */
    applyLanguage() {
      const last = this.turns.length ? textLanguage(this.turns[this.turns.length - 1].question) : null;
      const page = uiLanguageOf(document.documentElement.lang);
      this.lang = this.pinnedLang || last || page || "en";
      const s = this.strings;
      const dir = this.lang === "ar" ? "rtl" : "ltr";
      this.root.dir = dir;
      this.root.lang = this.lang;
      this.setAttribute("data-dir", dir); // lets :host place the floating launcher on the right side
      this.titleEl.textContent = s.title;
      this.newButton.lastChild.textContent = s.newConversation;
      this.newButton.title = s.newConversation;
      if (this.closeButton) this.closeButton.setAttribute("aria-label", s.close);
      if (this.launcher) {
        this.launcher.lastChild.textContent = s.launcher;
        this.launcher.setAttribute("aria-label", s.launcherLabel);
      }
      this.intro.textContent = this.askUrl ? s.intro : s.misconfigured;
      this.inputLabel.textContent = s.label;
      this.input.placeholder = s.placeholder;
      this.sendButton.lastChild.textContent = s.send;
      this.sendButton.title = s.send;
    }

    // -- persistence -------------------------------------------------------------------

    restore() {
      this.restoredOpen = false;
      try {
        const saved = JSON.parse(window.sessionStorage.getItem(this.storageKey) || "null");
        if (saved && Array.isArray(saved.turns)) {
          this.turns = saved.turns.filter((t) => t && typeof t.question === "string" && t.answer && typeof t.answer.answer === "string");
          for (const t of this.turns) {
            t.answer.citations = Array.isArray(t.answer.citations) ? t.answer.citations.filter((c) => c && typeof c === "object") : [];
            t.answer.blocks = answerBlocks(t.answer);
            t.answer.short_answer = typeof t.answer.short_answer === "string" ? t.answer.short_answer : "";
            t.answer.followup_note = typeof t.answer.followup_note === "string" ? t.answer.followup_note : null;
          }
          this.restoredOpen = saved.open === true;
        }
      } catch (_) {
        // Storage disabled (privacy mode, sandboxed frame) or damaged: start fresh.
      }
    }

    save() {
      const turns = this.turns
        .filter((t) => t.answer && !t.streaming)
        .map((t) => ({ question: t.question, answer: t.answer }));
      try {
        window.sessionStorage.setItem(this.storageKey, JSON.stringify({ turns, open: this.floating && !this.panel.hidden }));
      } catch (_) {
        // Quota or disabled storage: the conversation still works, it just won't survive a reload.
      }
    }

    newConversation() {
      if (this.controller) this.controller.abort();
      this.controller = null;
      this.turns = [];
      this.save();
      this.applyLanguage();
      this.renderAll();
      this.announce(this.strings.started);
      this.input.focus();
    }

    // -- asking ------------------------------------------------------------------------

    submit() {
      const question = this.input.value.trim();
      if (!question || this.controller) return;
      if (!this.askUrl) {
        this.announce(this.strings.misconfigured);
        return;
      }
      if (question.length > MAX_QUESTION_CHARS) {
        this.announce(this.strings.tooLong);
        return;
      }
      this.input.value = "";
      const turn = { question };
      this.turns.push(turn);
      this.applyLanguage();
      this.log.append(this.renderTurn(turn));
      this.scrollToTurn(turn);
      this.ask(turn);
    }

    /** [{role, content}] of the latest answered exchanges before ``turn``, oldest first. */
    history(turn) {
      const before = this.turns.slice(0, this.turns.indexOf(turn)).filter((t) => t.answer);
      const pairs = [];
      let total = 0;
      for (const t of before.slice(-HISTORY_TURNS).reverse()) {
        const question = t.question.slice(0, HISTORY_MESSAGE_CHARS);
        const answer = t.answer.answer.slice(0, HISTORY_MESSAGE_CHARS);
        total += question.length + answer.length;
        if (total > HISTORY_TOTAL_CHARS) break;
        const cited = [...new Set(t.answer.citations.map((c) => c.document_id).filter((d) => typeof d === "string"))];
        pairs.unshift([{ role: "user", content: question }, { role: "assistant", content: answer, document_ids: cited.slice(0, 50) }]);
      }
      return pairs.flat();
    }

    async ask(turn) {
      const controller = new AbortController();
      this.controller = controller;
      turn.error = null;
      turn.streaming = { text: "", citations: [] };
      this.updateTurn(turn);
      const body = { question: turn.question, history: this.history(turn) };
      if (this.topK) body.top_k = this.topK;
      const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
      if (this.apiKey) headers.Authorization = `Bearer ${this.apiKey}`;
      let idleTimer = null;
      const stillAlive = () => {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => controller.abort(), STREAM_IDLE_TIMEOUT_MS);
      };
      try {
        stillAlive();
        let response;
        try {
          response = await fetch(this.askUrl, {
            method: "POST", headers, body: JSON.stringify(body), signal: controller.signal,
            credentials: "omit", cache: "no-store",
          });
        } catch (error) {
          throw controller.signal.aborted && this.controller !== controller ? error : new RequestFailure("network");
        }
        if (!response.ok) throw await failureFor(response);
        const type = response.headers.get("Content-Type") || "";
        if (type.includes("text/event-stream") && response.body) {
          await this.consumeStream(turn, response.body, stillAlive);
        } else {
          this.finish(turn, await response.json());
        }
        if (!turn.answer) throw new RequestFailure("interrupted");
      } catch (error) {
        if (this.controller !== controller) return; // "new conversation" abandoned this turn
        turn.streaming = null;
        // Anything else (an unreadable body, say) is the service's trouble, not the reader's network.
        turn.error = error instanceof RequestFailure ? error : new RequestFailure(controller.signal.aborted ? "interrupted" : "unavailable");
        this.updateTurn(turn);
        this.announce(this.errorMessage(turn.error));
      } finally {
        clearTimeout(idleTimer);
        if (this.controller === controller) this.controller = null;
      }
    }

    async consumeStream(turn, body, stillAlive) {
      const reading = readEvents(body);
      try {
        for (;;) {
          const next = await reading.next();
          if (next.done) return;
          stillAlive();
          const { event, data } = next.value;
          let payload;
          try {
            payload = JSON.parse(data);
          } catch (_) {
            continue; // a malformed event: the final "done" event still carries everything
          }
          if (event === "delta" && payload && typeof payload.text === "string") {
            turn.streaming.text += payload.text;
            this.updateTurn(turn);
          } else if (event === "citation" && payload && typeof payload === "object") {
            turn.streaming.citations.push(payload);
            this.updateTurn(turn);
          } else if (event === "done") {
            this.finish(turn, payload);
            return;
          }
        }
      } catch (error) {
        if (error && error.name === "AbortError") throw error;
        throw new RequestFailure("interrupted");
      }
    }

    finish(turn, result) {
      if (!result || typeof result.answer !== "string") throw new RequestFailure("interrupted");
      turn.streaming = null;
      turn.answer = {
        answer: result.answer,
        abstained: result.abstained === true,
        answer_language: langAttribute(result.answer_language),
        citations: Array.isArray(result.citations) ? result.citations.filter((c) => c && typeof c === "object") : [],
        blocks: answerBlocks(result),
        short_answer: typeof result.short_answer_display === "string" ? result.short_answer_display
          : typeof result.short_answer === "string" ? result.short_answer : "",
        followup_note: followupNote(result),
      };
      this.updateTurn(turn);
      this.save();
      const s = this.strings;
      this.announce(turn.answer.abstained ? s.noAnswerReady : s.answerReady(turn.answer.citations.length));
    }

    retry(turn) {
      if (this.controller || !this.turns.includes(turn)) return;
      const wait = turn.error && turn.error.retryAt ? turn.error.retryAt - Date.now() : 0;
      if (wait > 0) {
        this.announce(this.strings.retrying(Math.ceil(wait / 1000)));
        clearTimeout(turn.retryTimer);
        turn.retryTimer = setTimeout(() => this.retry(turn), wait);
        return;
      }
      this.ask(turn);
    }

    errorMessage(error) {
      const s = this.strings;
      switch (error.kind) {
        case "busy":
          return error.retryAfter ? s.busy(error.retryAfter) : s.busyNoDelay;
        case "unavailable":
          return s.unavailable;
        case "interrupted":
          return s.interrupted;
        case "denied":
          return s.denied;
        case "rejected":
          return s.rejected(error.detail || "HTTP 400");
        default:
          return s.network;
      }
    }

    announce(message) {
      // Re-setting the same text is not announced again; clear first.
      this.status.textContent = "";
      window.setTimeout(() => { this.status.textContent = message; }, 50);
    }

    // -- rendering ---------------------------------------------------------------------

    renderAll() {
      this.log.replaceChildren(this.intro, ...this.turns.map((t) => this.renderTurn(t)));
      if (this.turns.length) this.scrollToTurn(this.turns[this.turns.length - 1]);
    }

    renderTurn(turn) {
      const index = this.turns.indexOf(turn);
      turn.id = `${this.uid}-t${index}-${Date.now().toString(36)}`;
      turn.node = el("article", { className: "turn" });
      const question = el("div", { className: "question" }, [
        el("span", { className: "sr-only", text: `${this.strings.you}: ` }),
        el("p", { dir: "auto", lang: langAttribute(textLanguage(turn.question)), text: turn.question }),
      ]);
      turn.answerNode = el("div", { className: "answer" });
      turn.noteNode = el("p", { className: "followup-note", dir: "auto", hidden: true });
      turn.node.append(question, turn.noteNode, turn.answerNode);
      this.updateTurn(turn);
      return turn.node;
    }

    updateTurn(turn) {
      if (!turn.answerNode) return;
      const box = turn.answerNode;
      const s = this.strings;
      box.className = "answer";
      box.setAttribute("aria-busy", turn.streaming ? "true" : "false");
      if (turn.error) {
        box.classList.add("failed");
        const retry = el("button", { type: "button", className: "retry", text: s.retry });
        if (turn.error.retryAfter && !turn.error.retryAt) {
          turn.error.retryAt = Date.now() + turn.error.retryAfter * 1000;
        }
        retry.addEventListener("click", () => {
          this.input.focus(); // the button is replaced while the question is asked again
          this.retry(turn);
        });
        const retriable = turn.error.kind !== "rejected" && turn.error.kind !== "denied";
        box.replaceChildren(el("p", { className: "notice", dir: "auto", text: this.errorMessage(turn.error) }), retriable ? retry : null);
        this.reveal(box);
        return;
      }
      const current = turn.streaming || turn.answer;
      if (!current) return;
      const text = turn.streaming ? turn.streaming.text : turn.answer.answer;
      const citations = turn.streaming ? turn.streaming.citations : turn.answer.citations;
      if (turn.streaming && !text) {
        box.replaceChildren(el("p", { className: "thinking", text: s.thinking }));
        return;
      }
      const children = [];
      if (turn.answer && turn.answer.abstained) {
        box.classList.add("abstained");
        children.push(el("p", { className: "badge", text: s.abstained }));
      }
      const blocks = turn.answer ? turn.answer.blocks || [] : [];
      const shown = new Set();
      if (blocks.length) {
        children.push(this.renderBlocks(turn, blocks, citations, shown));
      } else {
        children.push(this.renderAnswerText(turn, text, citations));
      }
      if (citations.length) children.push(this.renderSources(turn, citations, shown));
      box.replaceChildren(...children);
      const note = turn.answer && turn.answer.followup_note;
      if (turn.noteNode) {
        turn.noteNode.hidden = !note;
        turn.noteNode.textContent = note ? this.strings.readAs(note) : "";
      }
    }

    /**
     * The answer as the service laid it out: each paragraph in its own isolated block with its own
     * direction — the lead line ("2,500 — as of 25 January 2024, Arabi Post [1]") in the question's
     * direction, each verbatim quote right to left (an Arabic quote) as a block quote. ``shown``
     * collects the citations whose quote the answer shows, so their source cards need not repeat it.
     */
    renderBlocks(turn, blocks, citations, shown) {
      const lang = turn.answer.answer_language;
      const box = el("div", { className: "answer-text", lang, dir: lang === "ar" ? "rtl" : "ltr" });
      const byNumber = new Map(citations.map((c) => [Number(c.n), c]));
      const names = turn.answer.short_answer ? [{ quote: turn.answer.short_answer }] : [];
      blocks.forEach((block, i) => {
        if (block.kind === "quote") {
          const trailing = block.text.match(/(?:\s*\[\d{1,3}\])+\s*$/);
          const body = trailing ? block.text.slice(0, trailing.index) : block.text;
          const quote = el("blockquote", { className: "answer-quote", dir: block.dir, lang: block.lang });
          const id = `${turn.id}-b${i}`;
          quote.id = id;
          const toggle = this.appendFoldable(quote, cleanProse(body), id);
          if (trailing) this.appendProse(quote, turn, trailing[0], byNumber);
          box.append(quote);
          if (toggle) box.append(toggle);
          for (const n of block.citations) shown.add(n);
          return;
        }
        const paragraph = el("p", {
          className: block.kind === "lead" ? "answer-lead" : "answer-para", dir: block.dir, lang: block.lang,
        });
        let last = 0;
        for (const [start, end] of isolatedSpans(block.text, [...citations, ...names])) {
          this.appendProse(paragraph, turn, block.text.slice(last, start), byNumber);
          paragraph.append(el("bdi", { text: cleanProse(block.text.slice(start, end)) }));
          last = end;
        }
        this.appendProse(paragraph, turn, block.text.slice(last), byNumber);
        box.append(paragraph);
      });
      return box;
    }

    /** ``text`` into ``parent``, folded when long; returns the toggle button (or null). */
    appendFoldable(parent, text, controlsId) {
      const s = this.strings;
      if (text.length <= QUOTE_FOLD_CHARS) {
        parent.append(text);
        return null;
      }
      const space = text.lastIndexOf(" ", QUOTE_PREVIEW_CHARS);
      const cut = space > QUOTE_PREVIEW_CHARS / 2 ? space : QUOTE_PREVIEW_CHARS;
      const ellipsis = el("span", { className: "ellipsis", "aria-hidden": "true", text: "…" });
      const rest = el("span", { className: "rest", hidden: true, text: text.slice(cut) });
      parent.append(text.slice(0, cut), ellipsis, rest);
      const toggle = el("button", { type: "button", className: "fold", "aria-expanded": "false", "aria-controls": controlsId, text: s.showMore });
      toggle.addEventListener("click", () => {
        const unfold = rest.hidden;
        rest.hidden = !unfold;
        ellipsis.hidden = unfold;
        toggle.setAttribute("aria-expanded", String(unfold));
        toggle.textContent = unfold ? s.showLess : s.showMore;
      });
      return toggle;
    }

    /**
     * The answer with [n] markers as buttons. Quoted spans and outlet names are isolated
     * (<bdi>), so an Arabic quote in an English answer keeps its own order and the numbers
     * after it ("عربي بوست (2024-01-25)") are not pulled into the Arabic run.
     */
    renderAnswerText(turn, text, citations) {
      const lang = turn.answer ? turn.answer.answer_language : "";
      const paragraph = el("p", { className: "answer-text", dir: "auto", lang });
      const byNumber = new Map(citations.map((c) => [Number(c.n), c]));
      let last = 0;
      for (const [start, end] of isolatedSpans(text, citations)) {
        this.appendProse(paragraph, turn, text.slice(last, start), byNumber);
        // A quote is the source's own text: a footnote mark in it ("…1990.[2]") is no citation.
        const isolated = el("bdi");
        isolated.append(cleanProse(text.slice(start, end)));
        paragraph.append(isolated);
        last = end;
      }
      this.appendProse(paragraph, turn, text.slice(last), byNumber);
      return paragraph;
    }

    appendProse(parent, turn, text, byNumber) {
      let last = 0;
      for (const match of text.matchAll(MARKER)) {
        parent.append(cleanProse(text.slice(last, match.index)));
        parent.append(this.renderMarker(turn, Number(match[1]), byNumber.get(Number(match[1]))));
        last = match.index + match[0].length;
      }
      parent.append(cleanProse(text.slice(last)));
    }

    renderMarker(turn, n, citation) {
      const sup = el("sup", { className: "marker" });
      if (!citation) {
        sup.textContent = `[${n}]`; // its citation has not streamed in (yet)
        return sup;
      }
      const title = cleanLabel(citation.title) || cleanLabel(citation.source) || cleanLabel(citation.document_id);
      const button = el("button", {
        type: "button", className: "cite", text: String(n),
        "aria-label": this.strings.citeLabel(n, title), "aria-controls": `${turn.id}-s${n}`,
      });
      button.addEventListener("click", () => this.highlightSource(turn, n));
      sup.append(button);
      return sup;
    }

    highlightSource(turn, n) {
      const target = turn.node.querySelector(`[data-n="${n}"]`);
      if (!target) return;
      for (const item of turn.node.querySelectorAll(".source.active")) item.classList.remove("active");
      target.classList.add("active");
      target.focus({ preventScroll: true });
      this.reveal(target);
    }

    renderSources(turn, citations, shown) {
      const s = this.strings;
      const headingId = `${turn.id}-sources`;
      const list = el("ol", { className: "sources-list" });
      for (const citation of citations) {
        const n = Number(citation.n);
        if (!Number.isInteger(n)) continue;
        list.append(this.renderSource(turn, n, citation, shown && shown.has(n)));
      }
      return el("section", { className: "sources", "aria-labelledby": headingId }, [
        el("h3", { id: headingId, text: s.sources }), list,
      ]);
    }

    renderSource(turn, n, citation, quoteShown) {
      const s = this.strings;
      const title = cleanLabel(citation.title) || cleanLabel(citation.document_id);
      const outlet = cleanLabel(citation.source);
      const date = formatDate(citation.published_at, this.lang);
      const quote = quoteShown ? "" : cleanProse(citation.quote); // already a block of the answer
      const quoteId = `${turn.id}-q${n}`;
      const meta = el("p", { className: "meta" }, [el("bdi", { className: "source-title", text: title })]);
      if (outlet) meta.append(el("span", { className: "sep", "aria-hidden": "true", text: " · " }), el("bdi", { className: "outlet", text: outlet }));
      const latin = cleanLabel(citation.source_latin);
      if (outlet && latin && latin !== outlet) meta.append(" ", el("bdi", { className: "outlet-latin", text: `(${latin})` }));
      if (date) meta.append(el("span", { className: "sep", "aria-hidden": "true", text: " · " }), el("span", { className: "date", text: s.asOf(date) }));
      const children = [el("span", { className: "num", "aria-hidden": "true", text: String(n) }), meta];
      if (quote) {
        const block = el("blockquote", { id: quoteId, className: "quote", dir: "auto", lang: langAttribute(citation.lang) });
        children.push(block);
        const toggle = this.appendFoldable(block, quote, quoteId);
        if (toggle) children.push(toggle);
      }
      const href = safeHttpUrl(citation.url);
      if (href) {
        children.push(el("a", { className: "open", href, target: "_blank", rel: "noopener noreferrer nofollow", referrerpolicy: "no-referrer" }, [
          el("span", { text: s.openArticle }), el("span", { className: "sr-only", text: ` ${s.opensNewTab}` }),
        ]));
      }
      return el("li", { id: `${turn.id}-s${n}`, className: "source", "data-n": String(n), tabindex: "-1" }, children);
    }

    /** Scroll the log (never the host page) just enough to show ``node``, a turn's answer or source. */
    reveal(node) {
      const top = node.offsetTop;
      const bottom = top + node.offsetHeight;
      const log = this.log;
      if (top < log.scrollTop) {
        log.scrollTop = top - SCROLL_MARGIN_PX;
      } else if (bottom > log.scrollTop + log.clientHeight) {
        log.scrollTop = Math.min(top - SCROLL_MARGIN_PX, bottom - log.clientHeight + SCROLL_MARGIN_PX);
      }
    }

    /** Bring a question to the top of the log, so its answer is read from the beginning. */
    scrollToTurn(turn) {
      this.log.scrollTop = turn.node.offsetTop - SCROLL_MARGIN_PX;
    }
  }

  window.customElements.define(ELEMENT_NAME, QAChat);

  function addLauncher() {
    if (document.querySelector(`${ELEMENT_NAME}[floating]`)) return;
    document.body.append(el(ELEMENT_NAME, { floating: true }));
  }

  if (SCRIPT && SCRIPT_DATA.launcher !== "false") {
    if (document.body) addLauncher();
    else document.addEventListener("DOMContentLoaded", addLauncher, { once: true });
  }
})();
