// The address of the recognition function. This is the local default;
// the deploy script overwrites this file and `make run` serves its own.
window.HANDWRITING_CONFIG = { apiUrl: "http://localhost:8080" };
