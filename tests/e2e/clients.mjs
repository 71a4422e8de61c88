// Runs the stock GraphQL clients, unmodified, against a served Amend and prints what they saw
// as one JSON line. Usage: node clients.mjs SCENARIO BASE_URL [API_KEY USERNAME PASSWORD]
//   graphql-ws  the npm graphql-ws client: meUpdated, an update over HTTP, sign-out, 4403
//   apollo      Apollo Client: a query and a mutation over HTTP, a subscription (GraphQLWsLink)
//   audit       graphql-http's serverAudits (the GraphQL-over-HTTP conformance audits)
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { serverAudits } from "graphql-http";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [scenario, base, apiKey, username, password] = process.argv.slice(2);
const httpUrl = `${base}/graphql`;
const wsUrl = httpUrl.replace(/^http/, "ws");
const ME_UPDATED = "subscription { meUpdated { firstName version } }";
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  return Promise.race([
    promise,
    sleep(ms).then(() => { throw new Error(`timed out waiting for ${what}`); }),
  ]);
}

// Plain GraphQL over HTTP (fetch), for the steps that are not the client under test.
async function post(query, variables, headers) {
  const r = await fetch(httpUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return await r.json();
}

async function signIn() {
  const body = await post(
    "mutation($i: SignInInput!) { signIn(input: $i) { token errors { code } } }",
    { i: { identifier: username, password } },
    { "X-API-Key": apiKey },
  );
  return body.data.signIn.token;
}

async function updateMe(token, firstName, lastName) {
  const body = await post(
    "mutation($i: UpdateMeInput!) { updateMe(input: $i) { user { version } } }",
    { i: { firstName, lastName } },
    { Authorization: `Bearer ${token}` },
  );
  return body.data.updateMe.user.version;
}

/** Makes updates over HTTP until the stream has delivered one (the server registers the
 *  subscription shortly after `subscribe`; nothing tells the client when). Each changes
 *  lastName: an update that changes nothing is no event. */
async function updateUntilReceived(token, firstName, received) {
  for (let attempt = 0; attempt < 20; attempt++) {
    await updateMe(token, firstName, `Try ${attempt}`);
    const got = await Promise.race([received, sleep(500).then(() => null)]);
    if (got) return got;
  }
  throw new Error("no meUpdated event arrived");
}

async function graphqlWs() {
  const token = await signIn();
  const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { token }, retryAttempts: 0 });
  const events = [];
  let firstEvent;
  const received = new Promise((resolve) => { firstEvent = resolve; });
  const ended = new Promise((resolve, reject) => {
    client.subscribe({ query: ME_UPDATED }, {
      next: (value) => { events.push(value); firstEvent(value); },
      error: reject,
      complete: () => resolve("complete"),
    });
  });
  const first = await updateUntilReceived(token, "Ada", received);
  await post("mutation { signOut }", {}, { Authorization: `Bearer ${token}` });
  const end = await withTimeout(ended, 10000, "the stream to end");
  await client.dispose();

  // A revoked token, then one that is no token at all: the socket closes with 4403.
  const closeCodes = [];
  for (const bad of [token, "not-a-token"]) {
    const refused = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { token: bad }, retryAttempts: 0 });
    const code = await withTimeout(new Promise((resolve) => {
      refused.subscribe({ query: ME_UPDATED }, {
        next: () => resolve("next"),
        error: (e) => resolve(e && typeof e.code === "number" ? e.code : String(e)),
        complete: () => resolve("complete"),
      });
    }), 10000, "the refusal");
    closeCodes.push(code);
    await refused.dispose();
  }
  return { first: first.data.meUpdated, events: events.length, end, closeCodes };
}

async function apollo() {
  const token = await signIn();
  const headers = { Authorization: `Bearer ${token}` };
  const wsClient = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { token }, retryAttempts: 0 });
  const link = ApolloLink.split(
    ({ query }) => {
      const definition = getMainDefinition(query);
      return definition.kind === "OperationDefinition" && definition.operation === "subscription";
    },
    new GraphQLWsLink(wsClient),
    new HttpLink({ uri: httpUrl, headers }),
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  const query = await client.query({ query: gql`query { me { id username version } }` });
  const mutation = await client.mutate({
    mutation: gql`mutation($i: UpdateMeInput!) { updateMe(input: $i) { user { id firstName version } errors { code } } }`,
    variables: { i: { lastName: "Lovelace" } },
  });
  let firstEvent;
  const received = new Promise((resolve) => { firstEvent = resolve; });
  const subscription = client
    .subscribe({ query: gql`subscription { meUpdated { id firstName version } }` })
    .subscribe({ next: (value) => firstEvent(value), error: (e) => firstEvent({ error: String(e) }) });
  const event = await updateUntilReceived(token, "Grace", received);
  subscription.unsubscribe();
  await wsClient.dispose();
  client.stop();
  return { query: query.data.me, mutation: mutation.data.updateMe, event: event.data ?? event };
}

async function audit() {
  const results = [];
  for (const { name, fn } of serverAudits({ url: httpUrl, fetchFn: fetch })) {
    const result = await fn();
    results.push({ name, status: result.status, reason: result.reason ?? null });
  }
  return results;
}

const scenarios = { "graphql-ws": graphqlWs, apollo, audit };
try {
  console.log(JSON.stringify(await scenarios[scenario]()));
} catch (error) {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
}
