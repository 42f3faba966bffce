// nhsuk-frontend's components (header, error summary, details...) on every page.
import { initAll } from "/assets/nhsuk-frontend.min.js";

initAll();
