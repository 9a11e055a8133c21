/* Voucher entry form: add/remove line rows, memo copied down, running totals and balance.
 * Amounts are summed as integer cents parsed from the typed text, never as floating point. */
(function () {
  "use strict";
  var table = document.getElementById("voucher-lines");
  if (!table) { return; }
  var body = table.tBodies[0];
  var AMOUNT = /^\d+(\.\d{1,2})?$/;  // as the server takes line amounts: never negative

  function cents(text) {
    // Full-width digits (typed with a Chinese input method) are digits to the server too.
    var value = (text || "").replace(/[\uFF10-\uFF19]/g, function (digit) {
      return String.fromCharCode(digit.charCodeAt(0) - 0xFEE0);
    }).replace(/,/g, "").trim();
    if (!AMOUNT.test(value)) { return value === "" ? 0 : null; }
    var parts = value.split(".");
    return parseInt(parts[0], 10) * 100 + (parts[1] ? parseInt((parts[1] + "0").slice(0, 2), 10) : 0);
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

  // A memo filled in by the form rather than typed: it alone does not make a row worth saving.
  function copyMemo(input, text) {
    input.value = text;
    if (text) { input.setAttribute("data-copied", ""); } else { input.removeAttribute("data-copied"); }
  }

  function clearRow(row) {
    row.querySelectorAll("input").forEach(function (input) { input.value = ""; input.removeAttribute("data-copied"); });
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
    copyMemo(row.querySelector(".line-memo"), last.querySelector(".line-memo").value);
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
    copyMemo(input, source);
    input.select();  // typing replaces the copy; Tab keeps it
  });

  body.addEventListener("input", function (event) {
    if (event.target.classList.contains("line-memo")) { event.target.removeAttribute("data-copied"); }
    refresh();
  });

  // A row holding only a copied memo is one the user left empty: the server then skips it
  // instead of asking for its account.
  document.getElementById("voucher-form").addEventListener("submit", function () {
    body.querySelectorAll("tr.voucher-line").forEach(function (row) {
      var memo = row.querySelector(".line-memo");
      var used = [".line-account", ".line-debit", ".line-credit"].some(function (selector) {
        return row.querySelector(selector).value.trim() !== "";
      });
      if (!used && memo.hasAttribute("data-copied")) { copyMemo(memo, ""); }
    });
  });
  refresh();
}());
