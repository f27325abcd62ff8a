// Progressive enhancement only: every page works without this file.
// A "show password" switch for password fields that have one next to them.
for (const toggle of document.querySelectorAll('[data-reveals]')) {
  const field = document.getElementById(toggle.getAttribute('data-reveals'));
  if (!field) continue;
  toggle.hidden = false;
  toggle.querySelector('input').addEventListener('change', (event) => {
    field.type = event.target.checked ? 'text' : 'password';
  });
}
