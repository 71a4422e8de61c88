// Sign in, update the profile, read it back — typed by the generated operation types.
// Usage: node dist/client.js BASE_URL API_KEY USERNAME PASSWORD
import { readFileSync } from "node:fs";
import { GraphQLClient } from "graphql-request";
import type {
  MeQuery,
  SignInMutation,
  SignInMutationVariables,
  UpdateMeMutation,
  UpdateMeMutationVariables,
} from "./generated.js";

const operation = (name: string): string =>
  readFileSync(new URL(`../../operations/${name}.graphql`, import.meta.url), "utf8");

async function main(): Promise<void> {
  const [base, apiKey, username, password] = process.argv.slice(2);
  const anonymous = new GraphQLClient(`${base}/graphql`, { headers: { "X-API-Key": apiKey } });
  const signedIn = await anonymous.request<SignInMutation, SignInMutationVariables>(
    operation("signIn"),
    { input: { identifier: username, password } },
  );
  if (signedIn.signIn.errors.length > 0 || !signedIn.signIn.token) {
    throw new Error(`sign-in failed: ${JSON.stringify(signedIn.signIn.errors)}`);
  }
  const client = new GraphQLClient(`${base}/graphql`, {
    headers: { Authorization: `Bearer ${signedIn.signIn.token}` },
  });
  const updated = await client.request<UpdateMeMutation, UpdateMeMutationVariables>(
    operation("updateMe"),
    { input: { firstName: "Grace", data: { theme: "dark" } } },
  );
  const me = await client.request<MeQuery>(operation("me"));
  console.log(
    JSON.stringify({
      errors: updated.updateMe.errors,
      firstName: me.me.firstName,
      version: me.me.version,
      data: me.me.data,
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
