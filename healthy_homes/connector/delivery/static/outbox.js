// Post the outbox forms with the page's CSRF token (the middleware reads a header).
const token = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

for (const form of document.querySelectorAll("form[data-outbox-form]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await fetch(form.action, {
      method: "POST",
      headers: { "X-CSRF-Token": token },
      body: new URLSearchParams(new FormData(form)),
      redirect: "follow",
    });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      window.alert(problem.detail ?? problem.error ?? `Not done (${response.status})`);
      return;
    }
    window.location.assign(response.url);
  });
}
