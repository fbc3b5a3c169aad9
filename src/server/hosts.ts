/**
 * DNS rebinding: a web page a user opens in a browser can point a name of its own at 127.0.0.1 (or at
 * the address of a port-forward), and then read, as its own origin, whatever a server there answers
 * without credentials: the demo's page, a controller's page with no token. The browser still sends the
 * page's name in `Host`, so a server without a token answers only requests whose `Host` is a loopback
 * name or address, the address the connection came in on (an IP literal, which no rebinding can use),
 * or a name the user allowed (`--allow-host`).
 */
import type { NextFunction, Request, Response } from 'express';

/** The flag of the demo and the controller that allows more host names. */
export const ALLOW_HOST_FLAG = '--allow-host';

/** Host names (as `URL` spells them, IPv6 without brackets) every server without a token answers. */
const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1']);

/** The host name of a `Host` header (lower case, an IPv6 address without brackets); undefined: none. */
function hostNameOf(header: string): string | undefined {
  try {
    const url = new URL(`http://${header}/`);
    if (url.username !== '' || url.password !== '' || url.pathname !== '/' || url.search !== '')
      return undefined;
    return url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  } catch {
    return undefined;
  }
}

/** An address as the socket gives it, an IPv4 address mapped into IPv6 (`::ffff:10.0.0.1`) as IPv4. */
function plainAddress(address: string | undefined): string | undefined {
  return address?.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1').toLowerCase();
}

/**
 * A `--allow-host` value as the check compares it (lower case, an IPv6 address without brackets), or a
 * problem naming the flag: a host name or an IP address, no port, no path; `*` allows every host.
 */
export function allowedHost(text: string): { host: string } | { problem: string } {
  if (text === '*') return { host: '*' };
  const host = hostNameOf(text);
  const bare = host !== undefined && !/:\d*$/.test(text.replace(/^\[[^\]]*\]/, ''));
  if (!host || !bare || text.includes('/'))
    return {
      problem: `${ALLOW_HOST_FLAG} ${JSON.stringify(text)} is not a host name or an IP address (without a port)`,
    };
  return { host };
}

/**
 * Middleware refusing, with 403 and a JSON error naming the flag, a request whose `Host` is not a
 * loopback name or address (localhost, 127.0.0.1, [::1]), nor the address the request came in on, nor
 * one of `allowed` (normalised by `allowedHost`; `*`: every host), nor one of `service` (the
 * controller's Service's names, `serviceHostNames`, which the 403 lists). A request without `Host`
 * (HTTP/1.0) is no browser's, and is answered.
 */
export function hostCheck(allowed: readonly string[], service: readonly string[] = []) {
  const names = new Set([...allowed, ...service]);
  const answered =
    service.length > 0
      ? `localhost, 127.0.0.1, [::1], the address it listens on or its Service's names ${service.join(', ')}`
      : 'localhost, 127.0.0.1, [::1] or the address it listens on';
  const any = names.has('*');
  return (req: Request, res: Response, next: NextFunction): void => {
    const header = req.headers.host;
    if (any || header === undefined) return next();
    const name = hostNameOf(header);
    if (name !== undefined) {
      const local = plainAddress(req.socket.localAddress);
      if (LOOPBACK.has(name) || name === local || names.has(name)) return next();
    }
    const suggested = name ?? header;
    res.status(403).json({
      error:
        `Host ${JSON.stringify(header)} is not allowed: this server has no token, so it answers only ` +
        `requests for ${answered} (a guard against DNS rebinding); ` +
        `to reach it by this name, start it with ${ALLOW_HOST_FLAG} ${suggested.includes(':') ? `[${suggested}]` : suggested}`,
    });
  };
}

/** The name of the Service in front of the controller in the manifests (`--service-name`'s default). */
export const DEFAULT_SERVICE_NAME = 'microseg-controller';

/** The cluster's DNS domain unless the kubelets are told another (`--cluster-domain`'s default). */
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

/** A Service's name (an RFC 1035 label, as the API server requires of one). */
const SERVICE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A DNS label of a domain (RFC 1123). */
const DOMAIN_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Why `text` is no Service name, or undefined when it is one. */
export function serviceNameProblem(text: string): string | undefined {
  return SERVICE_NAME.test(text)
    ? undefined
    : `--service-name ${JSON.stringify(text)} is not a Service name (a lower-case letter, then lower-case letters, digits and '-', not ending in '-', at most 63 characters)`;
}

/**
 * A `--cluster-domain` value as the names are built with it (a final '.' dropped, as the check drops it
 * from `Host`), or a problem naming the flag: labels of lower-case letters, digits and '-' joined by '.'.
 */
export function clusterDomain(text: string): { domain: string } | { problem: string } {
  const domain = text.replace(/\.$/, '');
  if (domain.length > 0 && domain.length <= 253 && domain.split('.').every((l) => DOMAIN_LABEL.test(l)))
    return { domain };
  return {
    problem: `--cluster-domain ${JSON.stringify(text)} is not a DNS domain (lower-case letters, digits and '-' in labels joined by '.', e.g. cluster.local)`,
  };
}

/**
 * Whether a namespace's name, as the last label of a host name, could be a public top-level domain,
 * under which anyone may register a name: ICANN takes only letters for an ASCII top-level domain, and
 * an internationalised one is an A-label (`xn--...`).
 */
function mayBeTopLevelDomain(namespace: string): boolean {
  return /^[a-z]+$/.test(namespace) || namespace.startsWith('xn--');
}

/**
 * The names a pod in the cluster reaches the Service `service` of `namespace` by, which a server
 * without a token answers as its own: `<service>`, `<service>.<namespace>.svc`,
 * `<service>.<namespace>.svc.<domain>`, and `<service>.<namespace>` unless the namespace could be a
 * public top-level domain (`mayBeTopLevelDomain`). No web page can rebind any of these: a single label
 * is no registrable name, `svc` is no top-level domain, `.local` is never resolved through public DNS
 * (RFC 6762), and another cluster domain is the cluster owner's.
 */
export function serviceHostNames(service: string, namespace: string, domain: string): string[] {
  return [
    service,
    ...(mayBeTopLevelDomain(namespace) ? [] : [`${service}.${namespace}`]),
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.${domain}`,
  ];
}
