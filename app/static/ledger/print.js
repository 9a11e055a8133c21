/* Print button of the print view (no inline handlers: the Content-Security-Policy forbids them). */
(function () {
  "use strict";
  var button = document.getElementById("print-now");
  if (button) { button.addEventListener("click", function () { window.print(); }); }
}());
