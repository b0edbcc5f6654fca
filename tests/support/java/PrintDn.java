import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.Base64;

/**
 * Oracle for keyops' DN text (tests/crypto/test_dn_java.py).
 *
 * <p>Reads one base64 DER certificate per line on stdin and writes one line per
 * certificate: "OK" followed by the base64 UTF-8 of subject.toString(),
 * issuer.toString() (X500Principal) and getSubjectDN().toString(), or "ERROR" and the
 * reason. Base64 keeps a DN holding a newline on one line.
 */
public class PrintDn {
    public static void main(String[] args) throws Exception {
        CertificateFactory factory = CertificateFactory.getInstance("X.509");
        Base64.Encoder b64 = Base64.getEncoder();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        StringBuilder out = new StringBuilder();
        for (String line; (line = in.readLine()) != null; ) {
            if (line.isBlank()) {
                continue;
            }
            try {
                byte[] der = Base64.getDecoder().decode(line.trim());
                X509Certificate cert = (X509Certificate) factory.generateCertificate(new ByteArrayInputStream(der));
                out.append("OK");
                for (String dn : new String[] {
                        cert.getSubjectX500Principal().toString(),
                        cert.getIssuerX500Principal().toString(),
                        dnOf(cert)}) {
                    out.append(' ').append(b64.encodeToString(dn.getBytes(StandardCharsets.UTF_8)));
                }
            } catch (Exception e) {
                out.append("ERROR ").append(String.valueOf(e).replace('\n', ' '));
            }
            out.append('\n');
        }
        System.out.print(out);
        System.out.flush();
    }

    @SuppressWarnings("deprecation")
    private static String dnOf(X509Certificate cert) {
        return cert.getSubjectDN().toString();
    }
}
