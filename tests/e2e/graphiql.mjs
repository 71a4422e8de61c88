// Signs in, runs updateMe and a meUpdated subscription through the GraphiQL page, as a person
// would, and prints what the page showed as JSON.
// Usage: node graphiql.mjs BASE_URL API_KEY USERNAME PASSWORD
import { chromium } from "playwright-core";

const [base, apiKey, username, password] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const result = {};
try {
  const page = await browser.newPage();
  const failed = [];
  page.on("requestfailed", (r) => failed.push(r.url()));

  async function run(query, variables, headers) {
    const fragment = new URLSearchParams({
      query,
      variables: JSON.stringify(variables),
      headers: JSON.stringify(headers),
    });
    await page.goto("about:blank");
    await page.goto(`${base}/graphql#${fragment}`);
    await page.locator(".graphiql-execute-button").click();
    const response = page.locator(".graphiql-response");
    await response.getByText('"errors"').waitFor({ timeout: 15000 });
    return await response.innerText();
  }

  // Runs meUpdated in the playground (its socket authenticates with the session cookie), then
  // updates the account over HTTP, with a session of its own, until the page shows an event.
  async function subscribe() {
    const fragment = new URLSearchParams({
      query: "subscription { meUpdated { firstName lastName version } }",
      variables: "{}",
      headers: "{}",
    });
    await page.goto("about:blank");
    await page.goto(`${base}/graphql#${fragment}`);
    await page.locator(".graphiql-execute-button").click();
    const response = page.locator(".graphiql-response");
    const token = await graphql(
      "mutation($i: SignInInput!) { signIn(input: $i) { token } }",
      { i: { identifier: username, password } },
      { "X-API-Key": apiKey },
    ).then((body) => body.data.signIn.token);
    for (let attempt = 0; attempt < 20; attempt++) {
      await graphql(
        "mutation($i: UpdateMeInput!) { updateMe(input: $i) { errors { code } } }",
        { i: { lastName: `Sub ${attempt}` } },
        { Authorization: `Bearer ${token}` },
      );
      try {
        await response.getByText('"meUpdated"').waitFor({ timeout: 750 });
        return await response.innerText();
      } catch {
        // not registered yet: update again
      }
    }
    throw new Error(`no meUpdated event in the playground: ${await response.innerText()}`);
  }

  async function graphql(query, variables, headers) {
    const r = await fetch(`${base}/graphql`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...headers },
      body: JSON.stringify({ query, variables }),
    });
    return await r.json();
  }

  result.signIn = await run(
    "mutation($i: SignInInput!) { signIn(input: $i) { user { username } errors { code } } }",
    { i: { identifier: username, password } },
    { "X-API-Key": apiKey },
  );
  // No Authorization header: the session cookie set by signIn authenticates.
  result.updateMe = await run(
    "mutation($i: UpdateMeInput!) { updateMe(input: $i) { user { firstName version } errors { code } } }",
    { i: { firstName: "Ada" } },
    {},
  );
  result.subscription = await subscribe();
  result.cookies = (await page.context().cookies()).map((c) => ({ name: c.name, httpOnly: c.httpOnly }));
  result.failedRequests = failed;
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
