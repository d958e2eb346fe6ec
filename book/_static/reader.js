/* ibcore: click a figure to open it at full size (phones can then zoom into it). */
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".bd-article img").forEach(function (img) {
    if (img.closest("a") || img.closest(".katex")) { return; }
    var link = document.createElement("a");
    link.href = img.getAttribute("src");
    link.className = "ib-enlarge";
    link.title = "Open the full-size image";
    img.parentNode.insertBefore(link, img);
    link.appendChild(img);
  });
});
