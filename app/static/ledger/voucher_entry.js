/* Voucher entry form: add/remove line rows, memo copied down, running totals and balance.
 * Amounts are summed as integer cents parsed from the typed text, never as floating point. */
(function () {
  "use strict";
  var table = document.getElementById("voucher-lines");
  if (!table) { return; }
  var body = table.tBodies[0];
  var AMOUNT = /^-?\d+(\.\d{1,2})?$/;

  function cents(text) {
    var value = (text || "").replace(/,/g, "").trim();
    if (!AMOUNT.test(value)) { return value === "" ? 0 : null; }
    var negative = value.charAt(0) === "-";
    var parts = value.replace("-", "").split(".");
    var total = parseInt(parts[0], 10) * 100 + (parts[1] ? parseInt((parts[1] + "0").slice(0, 2), 10) : 0);
    return negative ? -total : total;
  }

  function format(total) {
    var negative = total < 0;
    var abs = Math.abs(total);
    var text = Math.floor(abs / 100) + "." + ("0" + (abs % 100)).slice(-2);
    return (negative ? "-" : "") + text;
  }

  function sum(selector) {
    var total = 0, bad = false;
    body.querySelectorAll(selector).forEach(function (input) {
      var value = cents(input.value);
      input.parentNode.classList.toggle("has-warning", value === null);
      if (value === null) { bad = true; } else { total += value; }
    });
    return { total: total, bad: bad };
  }

  function refresh() {
    var debit = sum(".line-debit"), credit = sum(".line-credit");
    document.getElementById("sum-debit").textContent = format(debit.total);
    document.getElementById("sum-credit").textContent = format(credit.total);
    var indicator = document.getElementById("balance-indicator");
    var balanced = !debit.bad && !credit.bad && debit.total === credit.total && debit.total !== 0;
    indicator.className = "label " + (balanced ? "label-success" : "label-danger");
    indicator.textContent = balanced ? indicator.getAttribute("data-balanced")
      : indicator.getAttribute("data-unbalanced") + " " + format(debit.total - credit.total);
  }

  function clearRow(row) {
    row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
    row.querySelectorAll(".help-block").forEach(function (el) { el.parentNode.removeChild(el); });
    row.querySelectorAll(".has-error, .has-warning").forEach(function (el) {
      el.classList.remove("has-error", "has-warning");
    });
  }

  document.getElementById("line-add").addEventListener("click", function () {
    var rows = body.querySelectorAll("tr.voucher-line");
    var last = rows[rows.length - 1];
    var row = last.cloneNode(true);
    clearRow(row);
    body.appendChild(row);
    row.querySelector(".line-memo").value = last.querySelector(".line-memo").value;
    row.querySelector(".line-account").focus();
  });

  body.addEventListener("click", function (event) {
    var button = event.target.closest(".line-remove");
    if (!button) { return; }
    if (body.querySelectorAll("tr.voucher-line").length <= 2) {
      clearRow(button.closest("tr"));
    } else {
      body.removeChild(button.closest("tr"));
    }
    refresh();
  });

  // 摘要 copied down: an empty memo takes the memo of the row above (the voucher summary for the first row).
  body.addEventListener("focusin", function (event) {
    var input = event.target;
    if (!input.classList.contains("line-memo") || input.value) { return; }
    var row = input.closest("tr").previousElementSibling;
    var source = row ? row.querySelector(".line-memo").value : document.getElementById("summary").value;
    input.value = source;
  });

  body.addEventListener("input", refresh);
  refresh();
}());
