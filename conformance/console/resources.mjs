// RADIUS profiles and SSO apps set up entirely in the admin console, in headless Debian Chromium driven by
// playwright-core: a user and a group with a VLAN as RADIUS reply attributes, a RADIUS profile whose shared
// secret is shown once (then rotated, shown once again), the group bound to it on the group page, a profile
// deleted through its confirmation page; an SSO app made from the metadata python3-saml writes for its SP
// (uploaded as a file, after a broken paste is refused), its assertion settings, an IdP key added and deleted,
// the group bound to it, and a SCIM connector to a closed loopback port whose failed delivery shows in the outbox
// and is retried now. The caller then runs radclient and the python3-saml SP with what this script printed.
// Screenshots of every page at desktop width and 375 px go to OUT_DIR; horizontal overflow and CSP violations are
// recorded. Prints one JSON line.
//
//   node resources.mjs BASE_URL ADMIN_EMAIL ADMIN_PASSWORD OUT_DIR SP_PY CA_PEM PYTHON
import { chromium } from "../saml/browser/node_modules/playwright-core/index.mjs";
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [base, email, password, outDir, spPy, caPem, python] = process.argv.slice(2);
const USER_PASSWORD = "Wireless-Horse-Pass-7";
const out = { screenshots: [] };
mkdirSync(outDir, { recursive: true });
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

// Every page is photographed at 1280 px and at 375 px (a phone), full length, and checked for horizontal overflow.
async function shoot(page, name) {
  for (const [label, width] of [["desktop", 1280], ["375", 375]]) {
    await page.setViewportSize({ width, height: 900 });
    const file = join(outDir, `${name}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    out.screenshots.push(file);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 1) {
      // Name the outermost elements that stick out, so the page can be fixed.
      const culprits = await page.evaluate(() => {
        const out = (e) => e.getBoundingClientRect().right > window.innerWidth + 1;
        // Content scrolled inside its own box does not widen the page, unless it is positioned out of it.
        const scrolled = (e) => {
          for (let a = e.parentElement; a; a = a.parentElement) {
            if (getComputedStyle(a).overflowX !== "visible") return !/absolute|fixed/.test(getComputedStyle(e).position);
          }
          return false;
        };
        return [...document.querySelectorAll("body *")].filter((e) => out(e) && !scrolled(e))
          .filter((e) => !(e.parentElement && out(e.parentElement) && !scrolled(e.parentElement)))
          .slice(0, 3).map((e) => `${e.tagName.toLowerCase()}.${e.className}: ${e.textContent.slice(0, 40)}`);
      });
      (out.overflow ||= []).push(`${name}@${width}: ${overflow}px ${culprits.join(" | ")}`);
    }
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

// The SAML test SP (conformance/saml/sp.py): one JSON line per call.
function sp(scenario, args) {
  const text = execFileSync(python, [spPy, base, caPem, scenario, JSON.stringify(args)]).toString();
  return JSON.parse(text.trim().split("\n").pop());
}

const status = async (page) => (await page.locator("p[role=status]").first().innerText()).trim();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
  const page = await context.newPage();
  const cspErrors = [];
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });

  // 1. Sign in.
  await page.goto(`${base}/console/login`);
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  out.signed_in = (await page.getByRole("heading", { level: 1 }).innerText()) === "Dashboard";

  // 2. A user with a password, and a group with a VLAN as its RADIUS reply attributes.
  await page.goto(`${base}/console/users/new`);
  await page.getByLabel("User name").fill("ann");
  await page.getByLabel("E-mail").fill("ann@example.com");
  await page.getByLabel("First name").fill("Ann");
  await page.getByLabel("Last name").fill("Wireless");
  await page.getByLabel("Password", { exact: true }).fill(USER_PASSWORD);
  await page.getByRole("button", { name: "Create user" }).click();
  out.user_created = (await status(page)).includes("User created");
  await page.goto(`${base}/console/groups/new`);
  await page.getByLabel("Name", { exact: true }).fill("wifi");
  await page.getByLabel(/RADIUS reply attributes/).fill(
    "Tunnel-Type=VLAN\nTunnel-Medium-Type=IEEE-802\nTunnel-Private-Group-Id=42");
  await page.getByRole("button", { name: "Create group" }).click();
  const groupUrl = page.url().split("?")[0];
  await page.getByLabel("Add users").fill("ann");
  await page.getByRole("button", { name: "Add", exact: true }).click();
  out.group_members = await page.locator("section h2", { hasText: "Members" }).innerText();

  // 3. RADIUS: the empty list, a bad network refused next to its field, then the profile; the secret is shown once.
  await page.goto(`${base}/console/radius`);
  await shoot(page, "radius-empty");
  await page.getByRole("link", { name: "New RADIUS profile" }).click();
  await page.getByLabel("Name", { exact: true }).fill("office-wifi");
  await page.getByLabel("Client networks").fill("not-a-network");
  await shoot(page, "radius-new");
  await page.getByRole("button", { name: "Create profile" }).click();
  out.network_error = await page.locator("#f-networks ~ .field-error").innerText();
  await page.getByLabel("Client networks").fill("127.0.0.1/32");
  await page.getByLabel("EAP-TTLS/PAP").check();
  await page.getByRole("button", { name: "Create profile" }).click();
  out.first_secret = (await page.locator("#radius-secret").innerText()).trim();
  out.secret_warning = await page.locator(".secret .warn").innerText();
  await shoot(page, "radius-created");
  const profileUrl = `${base}/console/radius/${await page.locator("dt:text-is('Id') + dd code").innerText()}`;
  await page.goto(profileUrl);
  out.secret_shown_again = (await page.content()).includes(out.first_secret)
    || (await page.locator("#radius-secret").count()) > 0;
  // Rotation: a new secret, shown once; the old one stops working.
  await page.getByRole("button", { name: "Rotate secret" }).click();
  out.rotated_notice = await status(page);
  out.secret = (await page.locator("#radius-secret").innerText()).trim();
  const ca = await page.request.get(`${base}/console/radius/ca.pem`);
  out.radius_ca = (await ca.text()).startsWith("-----BEGIN CERTIFICATE-----");

  // 4. Bind the group on its page; the profile shows it and what to type into an access point.
  await page.goto(groupUrl);
  await page.getByLabel("RADIUS office-wifi").check();
  await page.getByRole("button", { name: "Save access" }).click();
  out.radius_bound = (await status(page)).includes("Access saved");
  await page.goto(profileUrl);
  out.profile_groups = await page.locator("section", { has: page.getByRole("heading", { name: "Groups" }) })
    .locator("li a").allInnerTexts();
  const ap = page.locator("section", { has: page.getByRole("heading", { name: "Access point settings" }) });
  out.ap_server = await ap.locator("dt:text-is('RADIUS server') + dd").innerText();
  out.ap_port = await ap.locator("dt:text-is('Authentication port') + dd").innerText();
  out.ap_accounting_port = await ap.locator("dt:text-is('Accounting port') + dd").innerText();
  out.ap_methods = await ap.locator("dt:text-is('WPA-Enterprise (802.1X) methods') + dd").innerText();
  await shoot(page, "radius-detail");

  // 5. A second profile, deleted through its confirmation page.
  await page.goto(`${base}/console/radius/new`);
  await page.getByLabel("Name", { exact: true }).fill("lab");
  await page.getByLabel("Client networks").fill("192.0.2.0/24");
  await page.getByLabel("Shared secret").fill("lab-secret-typed-by-hand");
  await page.getByRole("button", { name: "Create profile" }).click();
  out.typed_secret_shown = (await page.locator("#radius-secret").innerText()).trim() === "lab-secret-typed-by-hand";
  await page.getByRole("link", { name: "Delete this profile" }).click();
  await shoot(page, "radius-delete");
  await page.getByRole("button", { name: "Delete profile" }).click();
  out.profiles_after_delete = await page.locator("table tbody tr td:first-child").allInnerTexts();
  await shoot(page, "radius");

  // 6. SSO: the SP's metadata, as python3-saml writes it for an SP that signs its requests.
  const keys = sp("keys", {});
  out.sp_cert = keys.cert;
  out.sp_key = keys.key;
  const md = sp("metadata", { sp_cert: keys.cert, sp_key: keys.key, sign_requests: true }).xml;
  const mdFile = join(outDir, "sp-metadata.xml");
  writeFileSync(mdFile, md);
  await page.goto(`${base}/console/apps`);
  await shoot(page, "apps-empty");
  await page.getByRole("link", { name: "New app" }).click();
  await shoot(page, "app-new");
  await page.getByLabel("Name", { exact: true }).fill("Example SP");
  await page.getByLabel("Or paste the metadata").fill("<md:EntityDescriptor");
  await page.getByRole("button", { name: "Create app" }).click();
  out.bad_metadata_error = await page.locator("#f-metadata-error").innerText();
  await shoot(page, "app-new-error");
  await page.getByLabel("Or paste the metadata").fill("");
  await page.getByLabel("Metadata file").setInputFiles(mdFile);
  await page.getByRole("button", { name: "Create app" }).click();
  out.app_created = (await status(page)).includes("App created");
  out.app = new URL(page.url()).pathname.split("/").pop();
  out.sp_entity_id = await page.locator("#sp-entity-id").innerText();
  out.sp_metadata_upload = await page.locator("#sp-metadata-upload").innerText();
  out.idp_metadata_url = await page.locator("#idp-metadata-url").innerText();
  out.signed_requests = await page.locator("dt:text-is('Signed requests required') + dd").innerText();

  // 7. Assertion settings: an unknown attribute source is refused in the core's words; then sign both.
  await page.getByLabel(/^Attributes/).fill("email=email\nmail=mail");
  await page.getByRole("button", { name: "Save changes" }).click();
  out.attribute_error = await page.locator("#f-attributes-error").innerText();
  await page.getByLabel(/^Attributes/).fill("email=email\nmemberOf=groups");
  await page.getByLabel("Sign", { exact: true }).selectOption("both");
  await page.getByRole("button", { name: "Save changes" }).click();
  out.settings_saved = (await status(page)).includes("Changes saved");

  // 8. IdP keys: a next key is published beside the active one, then deleted; certificates download.
  await page.getByRole("button", { name: "Add a next key" }).click();
  out.key_statuses = await page.locator("table.keys .badge").allInnerTexts();
  const certHref = await page.locator("table.keys a", { hasText: "Download" }).last().getAttribute("href");
  out.key_certificate = (await (await page.request.get(`${base}${certHref}`)).text())
    .startsWith("-----BEGIN CERTIFICATE-----");
  await page.locator("table.keys tr", { hasText: "next" }).getByRole("button", { name: "Delete" }).click();
  out.key_statuses_after_delete = await page.locator("table.keys .badge").allInnerTexts();

  // 9. The group bound to the app on its page.
  await page.goto(groupUrl);
  await page.getByLabel("App Example SP").check();
  await page.getByRole("button", { name: "Save access" }).click();
  out.app_bound = (await status(page)).includes("Access saved");

  // 10. SCIM: plain http is refused unless allowed for loopback; a closed port fails and shows in the outbox.
  await page.goto(`${base}/console/apps/${out.app}`);
  out.app_groups = await page.locator("section", { has: page.getByRole("heading", { name: "Groups" }) })
    .locator("li a").allInnerTexts();
  await page.getByLabel("SCIM base URL").fill("http://127.0.0.1:9/scim/v2");
  await page.getByLabel("Bearer token").fill("app-token-never-shown");
  await page.getByRole("button", { name: "Save connector" }).click();
  out.insecure_error = await page.locator("#f-base_url ~ .field-error").innerText();
  out.token_sent_back = (await page.content()).includes("app-token-never-shown");
  await page.getByLabel("Bearer token").fill("app-token-never-shown");
  await page.getByLabel("Allow plain http to a loopback address").check();
  await page.getByRole("button", { name: "Save connector" }).click();
  out.connector_saved = (await status(page)).includes("Connector saved");
  for (let i = 0; i < 30 && (await page.locator("table.outbox .badge.failure").count()) === 0; i++) {
    await sleep(1000);
    await page.reload();
  }
  out.outbox_state = await page.locator("table.outbox .badge").allInnerTexts();
  out.outbox_error = await page.locator("table.outbox tbody tr td:last-child").first().innerText();
  out.scim_status = await page.locator("#scim-status").innerText();
  out.token_shown = (await page.content()).includes("app-token-never-shown");
  await shoot(page, "app-detail");
  await page.getByRole("button", { name: "Retry now" }).click();
  out.retry_notice = await status(page);
  for (let i = 0; i < 15; i++) {
    out.attempts_after_retry = await page.locator("table.outbox tbody tr td:nth-child(4)").first().innerText();
    if (Number(out.attempts_after_retry) >= 2) break;
    await sleep(1000);
    await page.reload();
  }
  await page.goto(`${base}/console/apps`);
  out.apps_rows = await page.locator("table tbody tr").allInnerTexts();
  await shoot(page, "apps");

  // 11. An app made by hand, deleted through its confirmation page.
  await page.goto(`${base}/console/apps/new`);
  await page.getByLabel("Name", { exact: true }).fill("Scratch");
  await page.getByLabel("SP entity id").fill("https://scratch.test/metadata");
  await page.getByLabel("ACS URLs").fill("https://scratch.test/acs");
  await page.getByRole("button", { name: "Create app" }).click();
  out.hand_made_upload = await page.locator("#sp-metadata-upload").innerText();
  await page.getByRole("link", { name: "Delete this app" }).click();
  await shoot(page, "app-delete");
  await page.getByRole("button", { name: "Delete app" }).click();
  out.apps_after_delete = await page.locator("table tbody tr td:first-child").allInnerTexts();

  out.csp_errors = cspErrors;
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
