// keyops console: the little JavaScript it has. Every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Drag and drop a PEM or keystore onto its file input.
  for (const zone of document.querySelectorAll("[data-dropzone]")) {
    const input = zone.querySelector("input[type=file]");
    const hint = zone.querySelector("[data-drop-hint]");
    if (!input) continue;
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      if (e.dataTransfer && e.dataTransfer.files.length) {
        input.files = e.dataTransfer.files;
        if (hint) hint.textContent = "Chosen: " + e.dataTransfer.files[0].name;
      }
    });
    input.addEventListener("change", () => {
      if (hint && input.files.length) hint.textContent = "Chosen: " + input.files[0].name;
    });
  }
  // A page's main heading gets the focus after a form was answered (screen readers).
  const main = document.getElementById("main");
  if (main && document.querySelector("#deployment-result, [role=alert]")) main.focus();
});
