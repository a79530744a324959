// Added to Locust's own page by the Lab plugin (locust/lab_ui.py): a link to the Lab page, kept outside
// Locust's React tree so that its renders never remove it.
(function () {
  if (document.getElementById("lab-link")) return;
  const link = document.createElement("a");
  link.id = "lab-link";
  link.href = "./lab/timeline";
  link.target = "_blank";
  link.rel = "noopener";
  link.textContent = "Lab page: timeline, switch mode, keep a run \u2197";
  link.title = "Who serves each request, live; change MODE, WORKERS, THREADS, CPUS... and keep runs to compare";
  Object.assign(link.style, {
    position: "fixed", bottom: "14px", right: "14px", zIndex: 2000, padding: "6px 12px", borderRadius: "6px",
    background: "#15803d", color: "#fff", font: "600 13px system-ui, sans-serif", textDecoration: "none",
    boxShadow: "0 1px 4px rgba(0,0,0,.3)",
  });
  document.body.appendChild(link);
})();
