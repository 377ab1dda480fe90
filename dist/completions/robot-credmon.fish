# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_robot_credmon_global_optspecs
    string join \n h/help V/version
end

function __fish_robot_credmon_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_robot_credmon_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_robot_credmon_using_subcommand
    set -l cmd (__fish_robot_credmon_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c robot-credmon -n "__fish_robot_credmon_needs_command" -s h -l help -d 'Print help'
complete -c robot-credmon -n "__fish_robot_credmon_needs_command" -s V -l version -d 'Print version'
complete -c robot-credmon -n "__fish_robot_credmon_needs_command" -f -a "get" -d 'Get a fresh bearer token from Vault with a keytab (igwn-robot-get compatible)'
complete -c robot-credmon -n "__fish_robot_credmon_needs_command" -f -a "store" -d 'Store Vault credentials in HTCondor\'s credd (SEC_CREDENTIAL_STORER, robot-credmon-storer)'
complete -c robot-credmon -n "__fish_robot_credmon_needs_command" -f -a "token" -d 'Show the claims and remaining lifetime of a bearer token file'
complete -c robot-credmon -n "__fish_robot_credmon_needs_command" -f -a "credmon" -d 'Run as HTCondor\'s OAuth credential monitor (CREDMON_OAUTH)'
complete -c robot-credmon -n "__fish_robot_credmon_needs_command" -f -a "check" -d 'Monitoring check (Nagios/Icinga plugin) for a token file or a credmon'
complete -c robot-credmon -n "__fish_robot_credmon_needs_command" -f -a "status" -d 'Every credential the credmon keeps, one line each, most urgent first'
complete -c robot-credmon -n "__fish_robot_credmon_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -s k -l keytab -l kerberos-keytab -d 'Keytab with the robot\'s key [default: $KRB5_KTNAME]' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -s c -l ccache -l kerberos-ccache -d 'Kerberos credential cache for the robot\'s ticket [default: a private in-memory cache]' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -s a -l vaultserver -d 'Vault server: host, host:port or https URL (port 8200 when not given)' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -s i -l issuer -d 'Token issuer name in Vault' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l credkey -d 'Vault credential key [default: the principal without @REALM]' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -s r -l role -d 'Vault role [default: the principal up to the first \'/\']' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -s m -l minsecs -d 'Minimum remaining lifetime, in seconds, for an existing bearer token to be kept' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l vaulttokenfile -d 'Where to keep the Vault token [default: /tmp/vt_u<uid>]' -r -F
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -s o -l outfile -l bearertokenfile -d 'Bearer token file [default: $BEARER_TOKEN_FILE, else $XDG_RUNTIME_DIR/bt_u<uid>, else /tmp/bt_u<uid>]' -r -F
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l vaulttokenminttl -d 'Minimum remaining lifetime of the saved Vault token before a new Kerberos login' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l vaulttokenttl -d 'Lifetime of the Vault tokens we keep (longer login tokens are exchanged)' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l credd -d 'With --condor: store into the credd of this name (as in the collector; repeatable) [default: the names in ROBOT_CREDMON_CREDDS, else the local credd]' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l cafile -d 'CA bundle for the Vault server certificate [default: the system bundle]' -r -F
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l capath -d 'Directory of CA certificates [default: $X509_CERT_DIR, else /etc/grid-security/certificates if it exists]' -r -F
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l vaultalias -d 'Cluster name of the Vault service, used for the Kerberos service name host@ALIAS' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l vaultcertname -d 'Name to check in the Vault server certificate [default: the server host]' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l scopes -d 'Scopes to request (comma or space separated); uses token exchange' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l audience -d 'Audience to request (comma or space separated); uses token exchange' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l retry-time -d 'Give up retrying transient Vault failures after this long' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l request-timeout -d 'Time allowed for one Vault request once connected' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l metrics-file -d 'Write Prometheus metrics (node_exporter textfile format) to this file after each run' -r -F
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l web-open-command -d 'Command that opens the OIDC URL [default: xdg-open, none when $SSH_CLIENT is set]' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l oidc-timeout -d 'Give up waiting for the browser login after this long' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -s v -l verbose -d 'More output: -v says what was done, -vv adds the token claims, -vvv shows requests'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -s q -l quiet -d 'Only print errors'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l condor -d 'Store the credential in HTCondor\'s credd instead of writing a bearer token file'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l oidc -d 'Log in through Vault\'s OIDC flow in a web browser (needs a terminal); done automatically on a terminal when Vault holds no credential yet'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -l nooidc -d 'Never start the OIDC flow, even on a terminal'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -s h -l help -d 'Print help'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand get" -s V -l version -d 'Print version'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand store" -s k -l keytab -d 'Keytab to log in to Vault with [default: $KRB5_KTNAME, else the user\'s Kerberos ticket cache]' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand store" -l vaulttokendir -d 'Directory of the per-service Vault token files vt_<id>-<service> [default: /tmp]' -r -F
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand store" -l restore-before -d 'Re-store a credential whose stored Vault token has less than this left' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand store" -l credd -d 'Store into the credd of this name (as in the collector; repeatable) [default: the names in ROBOT_CREDMON_CREDDS, else the local credd]' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand store" -l web-open-command -d 'Command that opens the OIDC URL [default: xdg-open, none when $SSH_CLIENT is set]' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand store" -l oidc-timeout -d 'Give up waiting for the browser login after this long' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand store" -s v -l verbose -d 'Say what is done, and show condor_store_cred\'s output'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand store" -s d -l debug -d 'Debug output (implies -v)'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand store" -s h -l help -d 'Print help'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand store" -s V -l version -d 'Print version'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand token" -s m -l minsecs -d 'Exit 1 when less than this many seconds are left' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand token" -l cafile -d 'CA bundle for the issuer\'s HTTPS server (with --verify)' -r -F
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand token" -l capath -d 'Directory of CA certificates (with --verify)' -r -F
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand token" -l json -d 'Print the claims as JSON'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand token" -l verify -d 'Check the signature against the issuer\'s published keys (JWKS)'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand token" -s h -l help -d 'Print help'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand token" -s V -l version -d 'Print version'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand credmon" -s n -l name -d 'Daemon name: the prefix of the `<NAME>_LOG` and `<NAME>_DEBUG` knobs' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand credmon" -s c -l cred-dir -d 'Credential directory [default: SEC_CREDENTIAL_DIRECTORY_OAUTH]' -r -F
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand credmon" -s l -l log-file -d 'Log file [default: <NAME>_LOG, else SEC_CREDENTIAL_MONITOR_OAUTH_LOG, else $(LOG)/CredMonOAuthLog, else stderr]' -r -F
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand credmon" -l metrics-file -d 'Write Prometheus metrics (node_exporter textfile format) to this file after every full pass and on exit [default: ROBOT_CREDMON_METRICS_FILE, else none]' -r -F
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand credmon" -s d -l debug -d 'Debug logging'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand credmon" -s v -l verbose -d 'Also log to stderr'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand credmon" -l once -d 'Do one pass and exit: 0 when every credential is fine, 1 when any failed'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand credmon" -l check-config -d 'Print the resolved settings and exit (99 when they are invalid)'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand credmon" -s h -l help -d 'Print help'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand credmon" -s V -l version -d 'Print version'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand check" -s w -l warning -d 'WARNING range of time left: 3600: or 1h = warn when less than an hour is left' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand check" -s c -l critical -d 'CRITICAL range of time left: 1800: or 30m = critical when less than 30 minutes are left' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand check" -l max-age -d 'With --credmon: CRITICAL when CREDMON_COMPLETE is older than this (the credmon passes every 60 s)' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand check" -s t -l timeout -d 'UNKNOWN when the check takes longer than this (seconds or a duration)' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand check" -l credmon -d 'Check a credmon: pid alive and a robot-credmon credmon, CREDMON_COMPLETE recent, every Vault credential\'s .use fresh'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand check" -s h -l help -d 'Print help'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand check" -s V -l version -d 'Print version'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand status" -s c -l cred-dir -d 'Credential directory [default: /var/lib/condor/oauth_credentials]' -r -F
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand status" -s u -l user -d 'Only this user\'s credentials' -r
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand status" -l json -d 'Print one JSON object (stable form, see docs/operations.md)'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand status" -s h -l help -d 'Print help'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand status" -s V -l version -d 'Print version'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand help; and not __fish_seen_subcommand_from get store token credmon check status help" -f -a "get" -d 'Get a fresh bearer token from Vault with a keytab (igwn-robot-get compatible)'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand help; and not __fish_seen_subcommand_from get store token credmon check status help" -f -a "store" -d 'Store Vault credentials in HTCondor\'s credd (SEC_CREDENTIAL_STORER, robot-credmon-storer)'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand help; and not __fish_seen_subcommand_from get store token credmon check status help" -f -a "token" -d 'Show the claims and remaining lifetime of a bearer token file'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand help; and not __fish_seen_subcommand_from get store token credmon check status help" -f -a "credmon" -d 'Run as HTCondor\'s OAuth credential monitor (CREDMON_OAUTH)'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand help; and not __fish_seen_subcommand_from get store token credmon check status help" -f -a "check" -d 'Monitoring check (Nagios/Icinga plugin) for a token file or a credmon'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand help; and not __fish_seen_subcommand_from get store token credmon check status help" -f -a "status" -d 'Every credential the credmon keeps, one line each, most urgent first'
complete -c robot-credmon -n "__fish_robot_credmon_using_subcommand help; and not __fish_seen_subcommand_from get store token credmon check status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
