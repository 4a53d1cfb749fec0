// Stratus admin console: conveniences only. Every page works without this file.
// - Member picker: a textarea with data-suggest lists matching user names while you type; a click (or Enter)
//   appends the name.
// - Attribute names: a textarea with data-names offers names from a <datalist> for the line being typed.
// - The navigation, when it scrolls sideways, shows the current section.
// - Text marked data-copy (a link to hand over) gets a button that copies it.
"use strict";
(function () {
  function picker(area) {
    const list = document.createElement("ul");
    list.className = "suggest";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Matching users");
    list.hidden = true;
    area.insertAdjacentElement("afterend", list);
    let timer = null;
    function current() {
      const parts = area.value.split(/[\s,]+/);
      return parts[parts.length - 1] || "";
    }
    async function lookup() {
      const text = current();
      if (text.length < 1) { list.hidden = true; return; }
      const r = await fetch(area.dataset.suggest + "?q=" + encodeURIComponent(text), { credentials: "same-origin" });
      if (!r.ok) { return; }
      const names = await r.json();
      list.replaceChildren();
      for (const n of names) {
        const li = document.createElement("li");
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = n;
        b.addEventListener("click", function () {
          const parts = area.value.split(/([\s,]+)/);
          parts[parts.length - 1] = n;
          area.value = parts.join("") + " ";
          list.hidden = true;
          area.focus();
        });
        li.appendChild(b);
        list.appendChild(li);
      }
      list.hidden = names.length === 0;
    }
    area.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(lookup, 150);
    });
    area.addEventListener("keydown", function (e) {
      if (e.key === "ArrowDown" && !list.hidden) {
        const first = list.querySelector("button");
        if (first) { e.preventDefault(); first.focus(); }
      }
      if (e.key === "Escape") { list.hidden = true; }
    });
  }
  document.querySelectorAll("textarea[data-suggest]").forEach(picker);

  // On a narrow screen the navigation scrolls sideways: bring the current section into view.
  const current = document.querySelector("nav a[aria-current=page]");
  if (current) {
    const nav = current.closest("ul");
    if (nav && nav.scrollWidth > nav.clientWidth) {
      nav.scrollLeft = current.offsetLeft - (nav.clientWidth - current.offsetWidth) / 2;
    }
  }

  // Attribute names: a textarea with data-names offers the names of the named <datalist> that start like the
  // current line, before its "="; choosing one puts "Name=" on that line.
  function names(area) {
    const source = document.getElementById(area.dataset.names);
    if (!source) { return; }
    const all = Array.from(source.options).map((o) => o.value.replace(/=$/, ""));
    const list = document.createElement("ul");
    list.className = "suggest";
    list.setAttribute("aria-label", "Attribute names");
    list.hidden = true;
    area.insertAdjacentElement("afterend", list);
    function line() {
      const before = area.value.slice(0, area.selectionStart);
      const start = before.lastIndexOf("\n") + 1;
      return { start, text: before.slice(start) };
    }
    area.addEventListener("input", function () {
      const { start, text } = line();
      list.replaceChildren();
      if (text.length === 0 || text.includes("=")) { list.hidden = true; return; }
      const matches = all.filter((n) => n.toLowerCase().startsWith(text.toLowerCase())).slice(0, 12);
      for (const n of matches) {
        const li = document.createElement("li");
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = n;
        b.addEventListener("click", function () {
          const end = area.value.indexOf("\n", start);
          const rest = end === -1 ? "" : area.value.slice(end);
          area.value = area.value.slice(0, start) + n + "=" + rest;
          list.hidden = true;
          area.focus();
          const caret = start + n.length + 1;
          area.setSelectionRange(caret, caret);
        });
        li.appendChild(b);
        list.appendChild(li);
      }
      list.hidden = matches.length === 0;
    });
    area.addEventListener("keydown", function (e) {
      if (e.key === "ArrowDown" && !list.hidden) {
        const first = list.querySelector("button");
        if (first) { e.preventDefault(); first.focus(); }
      }
      if (e.key === "Escape") { list.hidden = true; }
    });
  }
  document.querySelectorAll("textarea[data-names]").forEach(names);

  // A "Copy" button after text marked data-copy; without the clipboard it selects the text instead.
  document.querySelectorAll("[data-copy]").forEach(function (text) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "secondary";
    b.textContent = "Copy " + text.dataset.copy;
    b.addEventListener("click", async function () {
      try {
        await navigator.clipboard.writeText(text.textContent);
        b.textContent = "Copied";
      } catch (e) {
        const range = document.createRange();
        range.selectNodeContents(text);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        b.textContent = "Selected: copy it now";
      }
    });
    (text.closest("pre") || text).insertAdjacentElement("afterend", b);
  });
})();
