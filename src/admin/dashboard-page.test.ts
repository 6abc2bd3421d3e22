import assert from "node:assert/strict";
import { test } from "node:test";
import { LOGIN } from "./dashboard-page.js";

test("the sign-in page escapes its message: no text becomes markup", () => {
  const page = LOGIN(`<script>alert(1)</script> & "q"`);
  assert.ok(page.includes("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;"));
  assert.ok(!page.includes("<script>alert"));
  assert.match(page, /<style>[^<]+<\/style>/, "the page's own style is kept as it is");
});
