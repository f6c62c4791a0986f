"""A clickable, collapsible parameter tree: a Streamlit components-v2 widget in plain HTML/CSS/JS.

The browser gets one compact row per node and builds DOM only for rows that are visible:
children are created on a block's first expand. Expand/collapse is pure JS (no rerun);
a click or Enter on a row sends its id to Python as the component state ``selected``.
"""

from __future__ import annotations

import streamlit as st

__all__ = ["tree_view"]

AUTO_COLLAPSE = 200  # above this many nodes, only the root starts open

# Row flags sent to the browser.
_HIGHLIGHT, _EXPANDED = 1, 2

_CSS = """
.tv {
  --indent: 16px;
  --accent: var(--st-primary-color, #2563eb);
  position: relative; box-sizing: border-box; overflow: auto; padding: 4px 0;
  background: #fff; border: 1px solid #e5e7eb; border-radius: 8px;
  font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2937;
}
.group { position: relative; }
.group[hidden] { display: none; }
.group.sub::before {
  content: ""; position: absolute; top: 0; bottom: 4px;
  left: calc(14px + var(--pd) * var(--indent)); border-left: 1px solid #e5e7eb;
}
.row {
  display: flex; align-items: center; gap: 6px; height: 26px; box-sizing: border-box;
  padding: 0 10px 0 calc(8px + var(--d) * var(--indent));
  cursor: pointer; white-space: nowrap; user-select: none; outline: none;
}
.row:hover { background: #f3f4f6; }
.row:focus-visible { box-shadow: inset 0 0 0 2px var(--accent); }
.row.hl { background: #fef6e0; }
.row.hl:hover { background: #fdefc4; }
.row.selected { background: #e0eaff; box-shadow: inset 3px 0 0 var(--accent); }
.row.selected:focus-visible {
  box-shadow: inset 3px 0 0 var(--accent), inset 0 0 0 2px var(--accent);
}
.caret {
  flex: none; width: 14px; height: 18px; line-height: 18px; text-align: center;
  font-size: 11px; color: #6b7280; border-radius: 4px;
}
.caret.toggle:hover { background: #e5e7eb; color: #111827; }
.caret.leaf::before {
  content: ""; display: inline-block; width: 5px; height: 5px; border-radius: 50%;
  background: #9ca3af; vertical-align: middle;
}
.caret.empty::before {
  content: ""; display: inline-block; width: 5px; height: 5px; border-radius: 1px;
  border: 1px solid #9ca3af; vertical-align: middle;
}
.label { min-width: 0; overflow: hidden; text-overflow: ellipsis; }
.block > .label { font-weight: 550; color: #111827; }
.type { font-weight: 400; color: #6b7280; }
.selected .label, .selected .type { color: #1e3a8a; }
.detail {
  flex: none; margin-left: auto; padding-left: 12px;
  font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: #6b7280;
}
.badge {
  flex: none; padding: 0 7px; border-radius: 999px; font-size: 11px; line-height: 17px;
  background: #f1f5f9; color: #475569; border: 1px solid #e2e8f0;
}
.hl .badge { background: #fde68a; color: #78350f; border-color: #fbbf24; }
.empty-tree { padding: 10px 12px; color: #6b7280; }
"""

_JS = """
const STORE = "st-tree-view:";
const memory = new Map();  // key -> {open: {id: bool}, selected, scroll}; survives reruns

function remember(key) {
  let mem = memory.get(key);
  if (!mem) {
    mem = {open: {}, selected: undefined, scroll: 0};
    try { mem.open = JSON.parse(localStorage.getItem(STORE + key)) || {}; } catch (e) {}
    memory.set(key, mem);
  }
  return mem;
}

function persist(key, mem) {
  try { localStorage.setItem(STORE + key, JSON.stringify(mem.open)); } catch (e) {}
}

function span(cls, text) {
  const s = document.createElement("span");
  s.className = cls;
  s.textContent = text;  // never innerHTML: labels are user-named modules
  return s;
}

export default function ({data, parentElement, setStateValue, setTriggerValue}) {
  const {key, selected, height, rows} = data;
  const mem = remember(key);
  const n = rows.length;
  const kids = Array.from({length: n}, () => []);
  const roots = [];
  const depth = new Int32Array(n);
  rows.forEach((r, i) => {
    if (r[1] >= 0) { kids[r[1]].push(i); depth[i] = depth[r[1]] + 1; } else roots.push(i);
  });
  const isOpen = (i) => kids[i].length > 0 && (mem.open[rows[i][0]] ?? (rows[i][6] & 2) > 0);
  const sel = rows.findIndex((r) => r[0] === selected);
  const moved = sel >= 0 && mem.selected !== selected;
  if (moved) {
    for (let p = rows[sel][1]; p >= 0; p = rows[p][1]) mem.open[rows[p][0]] = true;
    persist(key, mem);
  }
  mem.selected = selected;

  const old = parentElement.querySelector(".tv");
  const active = parentElement.activeElement ?? document.activeElement;
  const focusId = old && active && old.contains(active) ? active.dataset.id : undefined;
  const tv = document.createElement("div");
  tv.className = "tv";
  tv.setAttribute("role", "tree");
  tv.style.maxHeight = height + "px";

  function row(i) {
    const r = rows[i], el = document.createElement("div");
    el.className = "row" + (r[2] ? " block" : "") + (r[6] & 1 ? " hl" : "");
    el.dataset.i = i;
    el.dataset.id = r[0];
    el.tabIndex = -1;
    el.setAttribute("role", "treeitem");
    el.setAttribute("aria-level", depth[i] + 1);
    el.style.setProperty("--d", depth[i]);
    const caret = span("caret", "");
    if (kids[i].length) {
      caret.classList.add("toggle");
      caret.textContent = isOpen(i) ? "▾" : "▸";
      el.setAttribute("aria-expanded", isOpen(i));
    } else caret.classList.add(r[2] ? "empty" : "leaf");
    const cut = r[3].indexOf(" · ");
    const label = span("label", cut < 0 ? r[3] : r[3].slice(0, cut));
    if (cut >= 0) label.append(span("type", r[3].slice(cut)));
    el.append(caret, label);
    if (r[5]) el.append(span("badge", r[5]));
    if (r[4]) el.append(span("detail", r[4]));
    if (i === sel) { el.classList.add("selected"); el.setAttribute("aria-selected", "true"); }
    el.title = r[0] === "" ? r[3] : r[0];
    return el;
  }

  function item(i) {
    const wrap = document.createElement("div");
    wrap.append(row(i));
    if (isOpen(i)) wrap.append(group(kids[i], depth[i]));
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
    if (!kids[i].length || open === isOpen(i)) return;
    mem.open[rows[i][0]] = open;
    persist(key, mem);
    el.setAttribute("aria-expanded", open);
    el.firstChild.textContent = open ? "▾" : "▸";
    const g = el.nextSibling;
    if (g) g.hidden = !open;
    else el.parentNode.append(group(kids[i], depth[i]));  // children built on first expand
  }

  function focus(el) {
    const prev = tv.querySelector('.row[tabindex="0"]');
    if (prev) prev.tabIndex = -1;
    el.tabIndex = 0;
    el.focus({preventScroll: false});
  }

  function choose(el) {
    const id = rows[+el.dataset.i][0];
    for (const s of tv.querySelectorAll(".row.selected")) {
      s.classList.remove("selected");
      s.removeAttribute("aria-selected");
    }
    el.classList.add("selected");
    el.setAttribute("aria-selected", "true");
    focus(el);
    mem.selected = id;
    if (id === selected) return;
    setTriggerValue("clicked", id);  // batched with the state into one rerun
    setStateValue("selected", id);
  }

  function step(el, delta) {
    const shown = [...tv.querySelectorAll(".row")].filter((r) => r.offsetParent !== null);
    const at = shown.indexOf(el) + delta;
    if (at >= 0 && at < shown.length) focus(shown[at]);
  }

  tv.addEventListener("click", (e) => {
    const el = e.target.closest(".row");
    if (!el) return;
    if (e.target.closest(".caret.toggle")) toggle(el, !isOpen(+el.dataset.i));
    else choose(el);
  });
  tv.addEventListener("keydown", (e) => {
    const el = e.target.closest(".row");
    if (!el) return;
    const i = +el.dataset.i;
    if (e.key === "Enter" || e.key === " ") choose(el);
    else if (e.key === "ArrowDown") step(el, 1);
    else if (e.key === "ArrowUp") step(el, -1);
    else if (e.key === "ArrowRight" && isOpen(i)) step(el, 1);
    else if (e.key === "ArrowRight") toggle(el, true);
    else if (e.key === "ArrowLeft" && isOpen(i)) toggle(el, false);
    else if (e.key === "ArrowLeft" && rows[i][1] >= 0) {
      focus(el.parentNode.parentNode.previousSibling);
    } else return;
    e.preventDefault();
  });
  tv.addEventListener("scroll", () => { mem.scroll = tv.scrollTop; }, {passive: true});

  if (n) tv.append(group(roots));
  else tv.append(span("empty-tree", "No parameters to show."));
  if (old) old.replaceWith(tv); else parentElement.append(tv);
  tv.scrollTop = old ? old.scrollTop : mem.scroll;

  const home = tv.querySelector(".row.selected") ?? tv.querySelector(".row");
  if (home) home.tabIndex = 0;
  const again = focusId === undefined ? null
    : [...tv.querySelectorAll(".row")].find((r) => r.dataset.id === focusId);
  if (again) focus(again);
  const target = tv.querySelector(".row.selected");
  if (moved && target) {
    const dy = target.getBoundingClientRect().top - tv.getBoundingClientRect().top;
    const below = dy > tv.clientHeight - target.offsetHeight;
    if (dy < 0 || below) tv.scrollTop += dy - tv.clientHeight / 3;
  }
}
"""

_component = st.components.v2.component("param_explorer.tree_view", css=_CSS, js=_JS)


def _noop() -> None:
    """Callback whose registration declares the ``selected`` state and ``clicked`` trigger."""


def _payload(nodes: list[dict], selected: str | None, key: str, height: int) -> dict:
    """Compact rows ``[id, parent index, is block, label, detail, badge, flags]`` for the JS."""
    index = {node["id"]: i for i, node in enumerate(nodes)}
    big = len(nodes) > AUTO_COLLAPSE
    rows = []
    for node in nodes:
        open_ = bool(node.get("expanded")) and (not big or node.get("depth", 0) < 1)
        flags = (_HIGHLIGHT if node.get("highlight") else 0) | (_EXPANDED if open_ else 0)
        up = index.get(node.get("parent"), -1) if node.get("parent") is not None else -1
        rows.append(
            [
                node["id"],
                up if up < len(rows) else -1,  # pre-order: a parent comes first
                1 if node.get("kind") == "block" else 0,
                str(node.get("label", "")),
                str(node.get("detail", "")),
                str(node.get("badge", "")),
                flags,
            ]
        )
    return {"key": key, "selected": selected, "height": int(height), "rows": rows}


def tree_view(
    nodes: list[dict], *, selected: str | None, key: str, height: int = 480
) -> str | None:
    """Show ``nodes`` as a collapsible tree and return the id of the last row the user clicked.

    ``nodes`` is a flat pre-order list of dicts with ``id``, ``parent``, ``depth``, ``kind``
    ("block" or "param"), ``label``, ``detail``, ``badge``, ``highlight`` and ``expanded``.
    ``selected`` is the caller's current selection: that row is highlighted, its ancestors are
    opened when it changes, and clicking it again sends nothing. Above ``AUTO_COLLAPSE`` nodes
    only the root starts open. Which blocks are open is kept per ``key`` in the browser
    (memory and ``localStorage``), so it survives reruns without any rerun of its own.

    The return value is the component state ``st.session_state[key]["selected"]``: ``None``
    before the first click, then the last clicked id, kept across reruns. The function writes
    nothing else to session state; mirroring the click into the app's selection is the
    caller's job. When the selection can also change elsewhere, the last click goes stale and
    clicking that row again leaves it unchanged, so read ``st.session_state[key].get("clicked")``:
    the clicked id on the click's own rerun and ``None`` on every other run.

    Example:
        >>> tree_view(rows, selected=state.selection(), key="param_tree")
        >>> if (clicked := st.session_state["param_tree"].get("clicked")) is not None:
        ...     state.select(clicked)
    """
    result = _component(
        key=key,
        data=_payload(nodes, selected, key, height),
        height="content",
        on_selected_change=_noop,
        on_clicked_change=_noop,
    )
    value = result.get("selected")
    return value if isinstance(value, str) else None
