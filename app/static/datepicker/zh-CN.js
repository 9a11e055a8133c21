/*
 * The date picker of Flask-AppBuilder's forms and filters (bootstrap-datepicker, shipped by FAB
 * without its locale files) in Simplified Chinese when the page is: the names below, and the
 * language chosen by the data-language attribute of this script's tag (set by desk_base.html).
 */
(function ($) {
  "use strict";
  if (!$ || !$.fn || !$.fn.datepicker) { return; }
  $.fn.datepicker.dates["zh-CN"] = {
    days: ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"],
    daysShort: ["周日", "周一", "周二", "周三", "周四", "周五", "周六"],
    daysMin: ["日", "一", "二", "三", "四", "五", "六"],
    months: ["一月", "二月", "三月", "四月", "五月", "六月", "七月", "八月", "九月", "十月", "十一月", "十二月"],
    monthsShort: ["1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月"],
    today: "今天",
    clear: "清除",
    monthsTitle: "选择月份",
    format: "yyyy-mm-dd",
    titleFormat: "yyyy年mm月",
    weekStart: 1
  };
  var script = document.currentScript;
  var language = script && script.getAttribute("data-language");
  if (language && $.fn.datepicker.dates[language]) {
    // FAB's ab.js sets up its pickers when the page is ready, after this has run.
    $.fn.datepicker.defaults.language = language;
    $.fn.datepicker.defaults.weekStart = $.fn.datepicker.dates[language].weekStart;
  }
}(window.jQuery));
