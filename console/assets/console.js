// Stratus admin console: conveniences only. Every page works without this file.
// - Member picker: a textarea with data-suggest lists matching user names while you type; a click (or Enter)
//   appends the name.
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
})();
