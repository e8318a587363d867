// Sort a table by a column when its header is clicked; "#sort=<key>" or "#sort=<key>-desc" sorts on load.
(function () {
  function sortBy(table, th, desc) {
    var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.dataset.type === "num";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[idx].dataset.v !== undefined ? a.cells[idx].dataset.v : a.cells[idx].textContent;
      var y = b.cells[idx].dataset.v !== undefined ? b.cells[idx].dataset.v : b.cells[idx].textContent;
      var c = numeric ? (parseFloat(x) - parseFloat(y)) : x.localeCompare(y);
      return desc ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.classList.remove("asc", "desc"); });
    th.classList.add(desc ? "desc" : "asc");
    table.dataset.sorted = th.dataset.key + (desc ? "-desc" : "");
  }
  document.addEventListener("DOMContentLoaded", function () {
    var tables = document.querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
        th.addEventListener("click", function () { sortBy(table, th, th.classList.contains("asc")); });
      });
      var m = /sort=([A-Za-z_]+)(-desc)?/.exec(location.hash);
      if (m) {
        var th = table.tHead.querySelector('th[data-key="' + m[1] + '"]');
        if (th) sortBy(table, th, !!m[2]);
      }
    });
  });
})();
