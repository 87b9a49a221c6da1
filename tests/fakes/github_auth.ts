/**
 * App mode of the fake GitHub: installations, RS256 app JWTs checked like GitHub checks them,
 * installation tokens (`ghs_…`) and who a request acts as.
 *
 * @module
 */
import { createPublicKey } from "node:crypto";
import type { FakeAppOptions, FakeInstallation, IssuedToken } from "./github_types.ts";

/** Who a request acts as. */
export interface Identity {
  /** `review-bot` for any non-installation token, `<slug>[bot]` for an installation token. */
  login: string;
  /** `User` or `Bot`. */
  type: "User" | "Bot";
  /** Set for an installation token. */
  installationId?: number;
}

/** The identity of any token that is not an installation token (and of no token). */
export const TOKEN_USER: Identity = { login: "review-bot", type: "User" };

/** GitHub's answer to a JWT it cannot verify. */
export const JWT_UNDECODABLE = "A JSON web token could not be decoded";

const ALGORITHM = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;

function base64UrlBytes(part: string): Uint8Array<ArrayBuffer> {
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64 + "=".repeat((4 - b64.length % 4) % 4));
  return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
}

/** The token of an `Authorization: token …` / `Bearer …` header. */
export function tokenOf(authorization: string | null | undefined): string | undefined {
  return /^(?:token|bearer)\s+(\S+)\s*$/i.exec(authorization ?? "")?.[1];
}

/** Installations, issued tokens and the app's key. */
export class FakeAppAuth {
  /** Installations by id. */
  readonly installations: Map<number, FakeInstallation> = new Map();
  /** Every installation token issued, in order. */
  readonly issuedTokens: IssuedToken[] = [];
  #app?: { appId: string; key: Promise<CryptoKey>; tokenTtlMs: number; slug: string };
  #revoked = new Set<string>();

  /** Whether app mode is on. */
  get enabled(): boolean {
    return this.#app !== undefined;
  }

  /** The app id (`1` before app mode is on). */
  get appId(): number {
    return Number(this.#app?.appId ?? 1) || 1;
  }

  /** The app slug. */
  get slug(): string {
    return this.#app?.slug ?? "ai-review";
  }

  /** The login installation tokens write as. */
  get botLogin(): string {
    return `${this.slug}[bot]`;
  }

  /** Turns app mode on (throws at once for a PEM that is not a public key). */
  enable(options: FakeAppOptions): void {
    const der = createPublicKey(options.publicKeyPem).export({ type: "spki", format: "der" });
    const key = crypto.subtle.importKey("spki", new Uint8Array(der), ALGORITHM, false, [
      "verify",
    ]);
    key.catch(() => {}); // awaited where used
    this.#app = {
      appId: String(options.appId),
      key,
      tokenTtlMs: options.tokenTtlMs ?? 60 * 60 * 1000,
      slug: options.slug ?? "ai-review",
    };
  }

  /** Adds (or re-activates) an installation. */
  install(owner: string, installationId: number, repos?: string[]): FakeInstallation {
    const installation: FakeInstallation = {
      id: installationId,
      owner,
      ...(repos ? { repos: [...repos] } : {}),
      active: true,
    };
    this.installations.set(installationId, installation);
    return installation;
  }

  /** Removes an installation: its tokens stop working (even if it is installed again). */
  uninstall(installationId: number): void {
    const installation = this.installations.get(installationId);
    if (installation) installation.active = false;
    for (const t of this.issuedTokens) {
      if (t.installationId === installationId) this.#revoked.add(t.token);
    }
  }

  /** A new installation token for an active installation. */
  issue(installationId: number): IssuedToken {
    const random = Array.from(
      crypto.getRandomValues(new Uint8Array(18)),
      (b) => "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[b % 62],
    ).join("");
    const ttl = this.#app?.tokenTtlMs ?? 60 * 60 * 1000;
    const issued: IssuedToken = {
      installationId,
      token: `ghs_${random}`,
      // Whole seconds like GitHub, rounded up so a token lives at least `tokenTtlMs`.
      expiresAt: new Date(Math.ceil((Date.now() + ttl) / 1000) * 1000).toISOString()
        .replace(/\.\d{3}Z$/, "Z"),
    };
    this.issuedTokens.push(issued);
    return issued;
  }

  /**
   * Who `authorization` acts as; `null` for an installation token GitHub would not accept (not
   * issued, expired, revoked). Only app mode knows installation tokens.
   */
  identify(authorization: string | null | undefined): Identity | null {
    const token = tokenOf(authorization);
    if (!this.#app || !token?.startsWith("ghs_")) return TOKEN_USER;
    const issued = this.issuedTokens.find((t) => t.token === token);
    if (!issued || this.#revoked.has(token) || Date.parse(issued.expiresAt) <= Date.now()) {
      return null;
    }
    if (!this.installations.get(issued.installationId)?.active) return null;
    return { login: this.botLogin, type: "Bot", installationId: issued.installationId };
  }

  /** Whether `who` may reach `owner/repo` (an installation reaches its own repositories). */
  reaches(who: Identity, owner: string, repo: string): boolean {
    if (who.installationId === undefined) return true;
    const installation = this.installations.get(who.installationId);
    return !!installation && installation.owner.toLowerCase() === owner.toLowerCase() &&
      (!installation.repos ||
        installation.repos.some((r) => r.toLowerCase() === repo.toLowerCase()));
  }

  /**
   * Checks an app JWT (`Authorization: Bearer <jwt>`) like GitHub: RS256 by the app's key, `iss`
   * the app id, `iat` not in the future, `exp` in the future and at most 660 s after `iat`.
   * Returns GitHub's 401 message, or undefined when the JWT is good.
   */
  async jwtError(authorization: string | null | undefined): Promise<string | undefined> {
    const app = this.#app;
    const jwt = /^bearer\s+(\S+)\s*$/i.exec(authorization ?? "")?.[1];
    if (!app || !jwt) return JWT_UNDECODABLE;
    const [header, payload, signature, extra] = jwt.split(".");
    if (signature === undefined || extra !== undefined) return JWT_UNDECODABLE;
    let claims: { iss?: unknown; iat?: unknown; exp?: unknown };
    try {
      const decoded = JSON.parse(new TextDecoder().decode(base64UrlBytes(header)));
      if (decoded?.alg !== "RS256") return JWT_UNDECODABLE;
      claims = JSON.parse(new TextDecoder().decode(base64UrlBytes(payload)));
      const signed = new TextEncoder().encode(`${header}.${payload}`);
      const ok = await crypto.subtle.verify(
        ALGORITHM,
        await app.key,
        base64UrlBytes(signature),
        signed,
      );
      if (!ok || !claims || typeof claims !== "object") return JWT_UNDECODABLE;
    } catch {
      return JWT_UNDECODABLE;
    }
    if (String(claims.iss) !== app.appId) return JWT_UNDECODABLE;
    const now = Math.floor(Date.now() / 1000);
    if (!Number.isInteger(claims.iat) || (claims.iat as number) > now + 60) {
      return "'Issued at' claim ('iat') must be an Integer representing the time that the " +
        "assertion was issued";
    }
    if (typeof claims.exp !== "number" || claims.exp <= now) {
      return "'Expiration time' claim ('exp') must be a numeric value representing the future " +
        "time at which the assertion expires";
    }
    if (claims.exp - (claims.iat as number) > 660) {
      return "'Expiration time' claim ('exp') is too far in the future";
    }
    return undefined;
  }
}
