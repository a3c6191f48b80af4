//! `tobira central tls init`: a private CA and a server certificate signed
//! by it, for sites without a PKI of their own.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// The files `init` writes, by name inside its directory.
pub const CA_CERT: &str = "ca.pem";
/// The CA's private key: only for making another server certificate.
pub const CA_KEY: &str = "ca.key";
/// The service's certificate (`--tls-cert`).
pub const SERVER_CERT: &str = "server.pem";
/// The service's private key (`--tls-key`).
pub const SERVER_KEY: &str = "server.key";

/// How long the CA is valid: a site's controllers pin it, so replacing it
/// means visiting each of them.
const CA_VALIDITY: Duration = Duration::from_secs(20 * 365 * 86_400);
/// How long the server certificate is valid; a new one signed by the same CA
/// needs no change at the controllers.
const SERVER_VALIDITY: Duration = Duration::from_secs(5 * 365 * 86_400);
/// Validity starts this long before now, for controllers whose clock is a little behind.
const CLOCK_SLACK: Duration = Duration::from_secs(86_400);

/// Makes the CA and the server certificate for `names` and `ips` in `dir`;
/// refuses to overwrite any file. Returns the paths written, CA first.
pub fn init(dir: &Path, names: &[String], ips: &[IpAddr]) -> anyhow::Result<Vec<PathBuf>> {
    if names.is_empty() && ips.is_empty() {
        bail!("give the host names (--name) and/or addresses (--ip) the controllers use to reach the central service: the certificate is valid for those only");
    }
    let paths: Vec<PathBuf> = [CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY]
        .iter()
        .map(|f| dir.join(f))
        .collect();
    if let Some(taken) = paths.iter().find(|p| p.exists()) {
        bail!(
            "{} exists; tls init never overwrites a certificate or key (controllers may pin that CA): use another --dir",
            taken.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let now = date_time_ymd(1970, 1, 1)
        + SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the system clock is before 1970")?;
    let not_before = now - CLOCK_SLACK;

    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    // Named after its key: two sites' CAs never share a name, so a
    // certificate of the other is refused as of an unknown issuer.
    let tag = ca_key
        .public_key_raw()
        .get(1..7)
        .map(hex::encode)
        .unwrap_or_default();
    ca.distinguished_name
        .push(DnType::CommonName, format!("Tobira site CA {tag}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = now + CA_VALIDITY;
    let ca_cert = ca
        .self_signed(&ca_key)
        .context("signing the CA certificate")?;
    let ca_key_pem = ca_key.serialize_pem();

    let server_key = KeyPair::generate().context("generating the server key")?;
    let mut server =
        CertificateParams::new(names.to_vec()).context("a --name is not a DNS name")?;
    server
        .subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    let common = names
        .first()
        .cloned()
        .or_else(|| ips.first().map(IpAddr::to_string))
        .unwrap_or_default();
    server.distinguished_name.push(DnType::CommonName, common);
    server.is_ca = IsCa::ExplicitNoCa;
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    server.not_before = not_before;
    server.not_after = now + SERVER_VALIDITY;
    let issuer = Issuer::new(ca, ca_key);
    let server_cert = server
        .signed_by(&server_key, &issuer)
        .context("signing the server certificate")?;

    let contents = [
        (ca_cert.pem(), false),
        (ca_key_pem, true),
        (server_cert.pem(), false),
        (server_key.serialize_pem(), true),
    ];
    for (path, (text, private)) in paths.iter().zip(contents) {
        write_new(path, &text, private).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(paths)
}

/// Creates `path` (never replacing a file): keys readable by the owner only.
fn write_new(path: &Path, text: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, if private { 0o600 } else { 0o644 });
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_overwritten_and_keys_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let written = init(dir.path(), &["central.example".into()], &[]).unwrap();
        assert_eq!(written.len(), 4);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |f: &str| {
                std::fs::metadata(dir.path().join(f))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode(CA_KEY), 0o600);
            assert_eq!(mode(SERVER_KEY), 0o600);
        }
        let before = std::fs::read(dir.path().join(CA_KEY)).unwrap();
        let again = init(dir.path(), &["central.example".into()], &[]).unwrap_err();
        assert!(again.to_string().contains("never overwrites"), "{again}");
        assert_eq!(std::fs::read(dir.path().join(CA_KEY)).unwrap(), before);
    }

    #[test]
    fn a_certificate_for_nobody_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = init(dir.path(), &[], &[]).unwrap_err();
        assert!(err.to_string().contains("--name"), "{err}");
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }
}
