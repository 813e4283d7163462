"""The Labeling tab's keyboard shortcuts: one document keydown listener that clicks the tab's buttons by
elem_id. It acts only while the labeling area (#labeling-work) is visible, so other tabs keep their keys;
plain keys are ignored while focus is in a text field (typing a '1' in the editor is text), Ctrl+Enter and
Ctrl+S work there too, but only in the labeling area's own fields. Installed once per page by demo.load."""

KEYS_JS = """
() => {
  if (window.__llmplayLabelingKeys) return;
  window.__llmplayLabelingKeys = true;
  const shown = (el) => !!el && el.offsetParent !== null;
  const press = (id) => {
    const el = document.getElementById(id);
    if (!shown(el)) return false;
    const button = el.tagName === "BUTTON" ? el : el.querySelector("button");
    if (!button || button.disabled) return false;
    button.click();
    return true;
  };
  document.addEventListener("keydown", (e) => {
    const root = document.getElementById("labeling-work");
    if (!shown(root)) return;
    const t = e.target || document.body;
    const tag = t.tagName || "";
    const typing = tag === "TEXTAREA" || tag === "SELECT" || t.isContentEditable ||
      (tag === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(t.type));
    if (typing && !root.contains(t)) return;  // a field elsewhere on the page (e.g. queue settings)
    const ctrl = e.ctrlKey || e.metaKey;
    const key = e.key;
    let done = false;
    if (ctrl && !e.altKey && (key === "s" || key === "S")) {
      e.preventDefault();  // never the browser's "Save page" while labeling
      press("labeling-draft");
      return;
    }
    if (ctrl && key === "Enter") done = press("labeling-submit");
    else if (!typing && !ctrl && !e.altKey) {
      if (key === "Enter" && tag !== "BUTTON") done = press("labeling-submit");
      else if (/^[1-9]$/.test(key)) done = press("labeling-choice-" + (Number(key) - 1));
      else if (key === "ArrowLeft") done = press("labeling-prev");
      else if (key === "ArrowRight") done = press("labeling-next");
    }
    if (done) e.preventDefault();
  });
}
"""
