complete -c igwn-robot-get -s k -l keytab -l kerberos-keytab -d 'Keytab with the robot\'s key [default: $KRB5_KTNAME]' -r
complete -c igwn-robot-get -s c -l ccache -l kerberos-ccache -d 'Kerberos credential cache for the robot\'s ticket [default: a private in-memory cache]' -r
complete -c igwn-robot-get -s a -l vaultserver -d 'Vault server: host, host:port or https URL (port 8200 when not given)' -r
complete -c igwn-robot-get -s i -l issuer -d 'Token issuer name in Vault' -r
complete -c igwn-robot-get -l credkey -d 'Vault credential key [default: the principal without @REALM]' -r
complete -c igwn-robot-get -s r -l role -d 'Vault role [default: the principal up to the first \'/\']' -r
complete -c igwn-robot-get -s m -l minsecs -d 'Minimum remaining lifetime, in seconds, for an existing bearer token to be kept' -r
complete -c igwn-robot-get -l vaulttokenfile -d 'Where to keep the Vault token [default: /tmp/vt_u<uid>]' -r -F
complete -c igwn-robot-get -s o -l outfile -l bearertokenfile -d 'Bearer token file [default: $BEARER_TOKEN_FILE, else $XDG_RUNTIME_DIR/bt_u<uid>, else /tmp/bt_u<uid>]' -r -F
complete -c igwn-robot-get -l vaulttokenminttl -d 'Minimum remaining lifetime of the saved Vault token before a new Kerberos login' -r
complete -c igwn-robot-get -l vaulttokenttl -d 'Lifetime of the Vault tokens we keep (longer login tokens are exchanged)' -r
complete -c igwn-robot-get -l credd -d 'With --condor: store into the credd of this name (as in the collector; repeatable) [default: the names in ROBOT_CREDMON_CREDDS, else the local credd]' -r
complete -c igwn-robot-get -l cafile -d 'CA bundle for the Vault server certificate [default: the system bundle]' -r -F
complete -c igwn-robot-get -l capath -d 'Directory of CA certificates [default: $X509_CERT_DIR, else /etc/grid-security/certificates if it exists]' -r -F
complete -c igwn-robot-get -l vaultalias -d 'Cluster name of the Vault service, used for the Kerberos service name host@ALIAS' -r
complete -c igwn-robot-get -l vaultcertname -d 'Name to check in the Vault server certificate [default: the server host]' -r
complete -c igwn-robot-get -l scopes -d 'Scopes to request (comma or space separated); uses token exchange' -r
complete -c igwn-robot-get -l audience -d 'Audience to request (comma or space separated); uses token exchange' -r
complete -c igwn-robot-get -l retry-time -d 'Give up retrying transient Vault failures after this long' -r
complete -c igwn-robot-get -l request-timeout -d 'Time allowed for one Vault request once connected' -r
complete -c igwn-robot-get -l metrics-file -d 'Write Prometheus metrics (node_exporter textfile format) to this file after each run' -r -F
complete -c igwn-robot-get -l web-open-command -d 'Command that opens the OIDC URL [default: xdg-open, none when $SSH_CLIENT is set]' -r
complete -c igwn-robot-get -l oidc-timeout -d 'Give up waiting for the browser login after this long' -r
complete -c igwn-robot-get -s v -l verbose -d 'More output: -v says what was done, -vv adds the token claims, -vvv shows requests'
complete -c igwn-robot-get -s q -l quiet -d 'Only print errors'
complete -c igwn-robot-get -l condor -d 'Store the credential in HTCondor\'s credd instead of writing a bearer token file'
complete -c igwn-robot-get -l oidc -d 'Log in through Vault\'s OIDC flow in a web browser (needs a terminal); done automatically on a terminal when Vault holds no credential yet'
complete -c igwn-robot-get -l nooidc -d 'Never start the OIDC flow, even on a terminal'
complete -c igwn-robot-get -s h -l help -d 'Print help'
complete -c igwn-robot-get -s V -l version -d 'Print version'
