// The console's own script, loaded from static/ like htmx: the Content-Security-Policy allows no
// inline script and no eval, so behaviour that would be an hx-on attribute lives here.
"use strict";

// A form marked data-reset-on-success is cleared once htmx has had a successful answer to it
// (the API tokens page's mint form: the name is not left there for a second mint by mistake).
document.addEventListener("htmx:afterRequest", function (event) {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.hasAttribute("data-reset-on-success") &&
      event.detail.successful) {
    form.reset();
  }
});
