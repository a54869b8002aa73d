"use strict";
// Search: free text matches name, group and description; owner:X, tag:K[=V], pii:CLASS and
// type:T (group, feature, on-demand, feature-set: exact) narrow further. The query lives in the URL hash (#q=...), so any page can link to a
// search and the back button works.
function fsgenTokens(query) {
  return query.trim().toLowerCase().split(/\s+/).filter(function (t) { return t.length > 0; });
}
function fsgenMatches(row, tokens) {
  var d = row.dataset;
  return tokens.every(function (token) {
    var i = token.indexOf(":");
    var key = i > 0 ? token.slice(0, i) : "";
    var value = i > 0 ? token.slice(i + 1) : token;
    if (key === "owner") { return d.owner.indexOf(value) >= 0; }
    if (key === "tag") { return d.tags.split(" ").some(function (t) { return t.indexOf(value) === 0; }); }
    if (key === "pii") { return d.pii === value; }
    if (key === "type") { return d.type.replace(/ /g, "-") === value.replace(/ /g, "-"); }
    return d.text.indexOf(token) >= 0;
  });
}
function fsgenFilter() {
  var box = document.getElementById("search");
  if (!box) { return; }
  var tokens = fsgenTokens(box.value);
  ["owner", "pii", "type"].forEach(function (name) {
    var select = document.getElementById("filter-" + name);
    if (select && select.value) { tokens.push(name + ":" + select.value.toLowerCase()); }
  });
  var shown = 0;
  document.querySelectorAll("#catalog tbody tr").forEach(function (row) {
    var ok = fsgenMatches(row, tokens);
    row.classList.toggle("hidden", !ok);
    if (ok) { shown += 1; }
  });
  document.getElementById("count").textContent = shown;
  var hash = box.value ? "#q=" + encodeURIComponent(box.value) : "";
  if (window.location.hash !== hash) { history.replaceState(null, "", hash || window.location.pathname); }
}
function fsgenFromHash() {
  var box = document.getElementById("search");
  if (!box) { return; }
  var m = window.location.hash.match(/^#q=(.*)$/);
  box.value = m ? decodeURIComponent(m[1]) : box.value;
  fsgenFilter();
}
function fsgenJump(form) {
  var q = form.elements.q.value;
  var target = form.getAttribute("action") + (q ? "#q=" + encodeURIComponent(q) : "");
  window.location.href = target;
  if (document.getElementById("search")) { fsgenFromHash(); }
  return false;
}
document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("search");
  if (!box) { return; }
  box.addEventListener("input", fsgenFilter);
  document.querySelectorAll(".filters select").forEach(function (s) { s.addEventListener("change", fsgenFilter); });
  window.addEventListener("hashchange", fsgenFromHash);
  fsgenFromHash();
});
