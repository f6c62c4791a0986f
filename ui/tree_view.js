// The parameter tree: a Streamlit components-v2 widget (ui/tree_view.py).
//
// Python sends only the rows on screen. Opening a block whose children were not sent,
// closing one, or asking for other children sends the new view ({model, open, shown,
// first}) as the component state "view"; Python answers with the rows of that view (a
// rerun of the tree's fragment only). Each paging row ("show earlier", "show more")
// carries the window it asks for. Clicking a row sends its id as the state "selected" and
// the trigger "clicked". The user's open/closed choices and windows are kept per model in
// memory and localStorage.

const STORE = "st-tree-view:";
const memory = new Map(); // model -> {open, shown, first (id -> n), selected, scroll}

function remember(model) {
  let mem = memory.get(model);
  if (!mem) {
    mem = { open: {}, shown: {}, first: {}, selected: undefined, scroll: 0 };
    try {
      const saved = JSON.parse(localStorage.getItem(STORE + model)) || {};
      mem.open = saved.open || {};
      mem.shown = saved.shown || {};
      mem.first = saved.first || {};
    } catch (e) {
      // no storage (private mode): memory only
    }
    memory.set(model, mem);
  }
  return mem;
}

function persist(model, mem) {
  try {
    const { open, shown, first } = mem;
    localStorage.setItem(STORE + model, JSON.stringify({ open, shown, first }));
  } catch (e) {
    // storage full or refused: memory only
  }
}

function sortedText(obj) {
  return JSON.stringify(Object.keys(obj || {}).sort().map((k) => [k, obj[k]]));
}

function sameView(a, b) {
  return ["open", "shown", "first"].every((k) => sortedText(a[k]) === sortedText(b[k]));
}

function span(cls, text) {
  const s = document.createElement("span");
  s.className = cls;
  s.textContent = text; // never innerHTML: names come from user-named modules
  return s;
}

// Block paths above an id: "0.1/bias" -> ["", "0", "0.1"]; "0.1" -> ["", "0"].
function ancestors(id) {
  if (id === "") return [];
  const slash = id.lastIndexOf("/"); // as ui/tree_rows.py's name_of reads an id
  const block = slash >= 0 ? id.slice(0, slash) : id.split(".").slice(0, -1).join(".");
  const parts = block ? block.split(".") : [];
  return parts.map((_, i) => parts.slice(0, i).join(".")).concat(block ? [block] : [""]);
}

// A row's distance from the top of the tree's scrolled content, in px.
function place(el, tv) {
  return el.getBoundingClientRect().top - tv.getBoundingClientRect().top + tv.scrollTop;
}

export default function ({ data, parentElement, setStateValue, setTriggerValue }) {
  const { model, selected, height, rows } = data;
  const mem = remember(model);
  const sent = data.view || { open: {}, shown: {}, first: {} };
  const byId = new Map(rows.map((r, i) => [r.id, i]));
  const kids = rows.map(() => []);
  const roots = [];
  rows.forEach((r, i) => {
    const up = r.parent === null ? undefined : byId.get(r.parent);
    if (up === undefined) roots.push(i);
    else kids[up].push(i);
  });

  function sendView() {
    persist(model, mem);
    const { open, shown, first } = mem;
    setStateValue("view", { model, open: { ...open }, shown: { ...shown }, first: { ...first } });
  }

  // A selection made elsewhere (the treemap, a link) under a block the user closed: open it.
  const moved = selected !== undefined && selected !== null && mem.selected !== selected;
  mem.selected = selected;
  if (moved && !byId.has(selected)) {
    for (const a of ancestors(selected)) mem.open[a] = true;
  }
  // Python drew the view it was last told about; if this browser remembers another, ask again.
  if (!sameView(mem, sent)) sendView();

  const old = parentElement.querySelector(".tv");
  const oldTarget = old && old.querySelector(".row.selected");
  const oldTop = oldTarget ? place(oldTarget, old) : null; // where the selection was drawn
  const active = parentElement.activeElement ?? document.activeElement;
  const focusId = old && active && old.contains(active) ? active.dataset.id : undefined;
  const tv = document.createElement("div");
  tv.className = "tv";
  tv.setAttribute("role", "tree");
  tv.style.maxHeight = height + "px";

  function row(i) {
    const r = rows[i];
    const el = document.createElement("div");
    el.className = `row ${r.kind}` + (r.highlight ? " hl" : "");
    el.dataset.i = i;
    el.dataset.id = r.id;
    el.tabIndex = -1;
    el.setAttribute("role", "treeitem");
    el.setAttribute("aria-level", r.depth + 1);
    el.style.setProperty("--d", r.depth);
    const caret = span("caret", "");
    if (r.children > 0) {
      caret.classList.add("toggle");
      caret.textContent = r.open ? "▾" : "▸";
      el.setAttribute("aria-expanded", r.open);
    } else if (r.kind !== "more") caret.classList.add(r.kind === "block" ? "empty" : "leaf");
    const label = span("label", "");
    label.append(span("name", r.name));
    if (r.type) label.append(span("type", ` · ${r.type}`));
    el.append(caret, label);
    if (r.badge) el.append(span("badge", r.badge));
    if (r.detail) el.append(span("detail", r.detail));
    if (r.id === selected && r.kind !== "more") {
      el.classList.add("selected");
      el.setAttribute("aria-selected", "true");
    }
    el.title = (r.title || r.name) + (r.detail ? `\n${r.detail}` : "");
    return el;
  }

  function item(i) {
    const wrap = document.createElement("div");
    wrap.append(row(i));
    if (kids[i].length) wrap.append(group(kids[i], rows[i].depth));
    return wrap;
  }

  function group(list, parentDepth) {
    const g = document.createElement("div");
    g.className = parentDepth === undefined ? "group" : "group sub";
    g.setAttribute("role", "group");
    if (parentDepth !== undefined) g.style.setProperty("--pd", parentDepth);
    for (const i of list) g.append(item(i));
    return g;
  }

  function toggle(el, open) {
    const i = +el.dataset.i;
    const r = rows[i];
    if (!r.children || open === isOpen(el)) return;
    mem.open[r.id] = open;
    el.setAttribute("aria-expanded", open);
    el.firstChild.textContent = open ? "▾" : "▸";
    const g = el.nextSibling;
    if (g) g.hidden = !open; // children already here: show or hide them at once
    else el.classList.add("loading"); // Python sends them
    mem.userLayout = true; // the user moved rows: keep the scroll where they are working
    sendView();
  }

  function isOpen(el) {
    return el.getAttribute("aria-expanded") === "true";
  }

  function more(el) {
    const r = rows[+el.dataset.i]; // "show earlier" or "show more": Python says which window
    if (!r.next) return;
    mem.first[r.parent] = r.next.first;
    mem.shown[r.parent] = r.next.shown;
    mem.userLayout = true;
    el.classList.add("loading");
    sendView();
  }

  function focus(el) {
    const prev = tv.querySelector('.row[tabindex="0"]');
    if (prev) prev.tabIndex = -1;
    el.tabIndex = 0;
    el.focus({ preventScroll: false });
  }

  function choose(el) {
    const r = rows[+el.dataset.i];
    if (r.kind === "more") return more(el);
    for (const s of tv.querySelectorAll(".row.selected")) {
      s.classList.remove("selected");
      s.removeAttribute("aria-selected");
    }
    el.classList.add("selected");
    el.setAttribute("aria-selected", "true");
    focus(el);
    mem.selected = r.id;
    if (r.id === selected) return;
    setTriggerValue("clicked", r.id); // batched with the state into one rerun
    setStateValue("selected", r.id);
  }

  function step(el, delta) {
    const shown = [...tv.querySelectorAll(".row")].filter((x) => x.offsetParent !== null);
    const at = shown.indexOf(el) + delta;
    if (at >= 0 && at < shown.length) focus(shown[at]);
  }

  tv.addEventListener("click", (e) => {
    const el = e.target.closest(".row");
    if (!el) return;
    if (e.target.closest(".caret.toggle")) toggle(el, !isOpen(el));
    else choose(el);
  });
  tv.addEventListener("keydown", (e) => {
    const el = e.target.closest(".row");
    if (!el) return;
    const r = rows[+el.dataset.i];
    if (e.key === "Enter" || e.key === " ") choose(el);
    else if (e.key === "ArrowDown") step(el, 1);
    else if (e.key === "ArrowUp") step(el, -1);
    else if (e.key === "ArrowRight" && isOpen(el)) step(el, 1);
    else if (e.key === "ArrowRight") toggle(el, true);
    else if (e.key === "ArrowLeft" && isOpen(el)) toggle(el, false);
    else if (e.key === "ArrowLeft" && r.parent !== null) {
      focus(el.parentNode.parentNode.previousSibling);
    } else return;
    e.preventDefault();
  });
  tv.addEventListener(
    "scroll",
    () => {
      mem.scroll = tv.scrollTop;
    },
    { passive: true },
  );

  if (rows.length) tv.append(group(roots));
  else tv.append(span("empty-tree", "No parameters to show."));
  if (old) old.replaceWith(tv);
  else parentElement.append(tv);
  tv.scrollTop = old ? old.scrollTop : mem.scroll;

  const home = tv.querySelector(".row.selected") ?? tv.querySelector(".row");
  if (home) home.tabIndex = 0;
  const again =
    focusId === undefined
      ? null
      : [...tv.querySelectorAll(".row")].find((x) => x.dataset.id === focusId);
  if (again) focus(again);
  const target = tv.querySelector(".row.selected");
  // Bring the selection into view when it changed, or when the rows around it changed for
  // another reason than the user's own opening or paging (a filter cleared, a new page).
  const rowsKey = rows.map((r) => r.id).join("\n");
  const newRows = mem.rowsKey !== rowsKey;
  mem.rowsKey = rowsKey;
  const shifted = newRows && !mem.userLayout && target && place(target, tv) !== oldTop;
  if (newRows) mem.userLayout = false; // Python's answer to the user's opening or paging came
  if ((moved || shifted) && target) {
    const dy = target.getBoundingClientRect().top - tv.getBoundingClientRect().top;
    const below = dy > tv.clientHeight - target.offsetHeight;
    if (dy < 0 || below) tv.scrollTop += dy - tv.clientHeight / 3;
  }
}
