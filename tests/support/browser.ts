// What simulated browsers send and what a site answers them, shared by the crawler tests and the eval.
export const CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
export const HEADLESS = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";
/** Response headers of an HTML page and of an image. */
export const HTML: [string, string][] = [
  [":status", "200"],
  ["content-type", "text/html; charset=utf-8"],
];
export const PNG: [string, string][] = [
  [":status", "200"],
  ["content-type", "image/png"],
];
