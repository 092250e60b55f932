// Sortable tables: click a header to sort by it (again to reverse). A numeric column sorts
// by its cells' data-value (empty: last). #sort=COLUMN-asc|desc in the address sorts too.
(function () {
  function sortBy(table, index, descending) {
    var body = table.tBodies[0], heads = table.tHead.rows[0].cells;
    var numeric = heads[index].dataset.type === "number";
    var rows = Array.prototype.slice.call(body.rows);
    function key(row) {
      var cell = row.cells[index];
      if (!numeric) return cell.textContent.trim();
      var value = parseFloat(cell.dataset.value);
      return isNaN(value) ? null : value;
    }
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x === y) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      var order = numeric ? x - y : x.localeCompare(y);
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    for (var i = 0; i < heads.length; i++) heads[i].removeAttribute("aria-sort");
    heads[index].setAttribute("aria-sort", descending ? "descending" : "ascending");
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (head, index) {
      head.addEventListener("click", function () {
        sortBy(table, index, head.getAttribute("aria-sort") === "ascending");
      });
    });
  });
  function fromHash() {
    var wanted = /^#sort=(\d+)-(asc|desc)$/.exec(window.location.hash);
    if (!wanted) return;
    document.querySelectorAll("table.sortable").forEach(function (table) {
      if (+wanted[1] < table.tHead.rows[0].cells.length)
        sortBy(table, +wanted[1], wanted[2] === "desc");
    });
  }
  fromHash();
  window.addEventListener("hashchange", fromHash);
})();
