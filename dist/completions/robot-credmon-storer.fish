complete -c robot-credmon-storer -s k -l keytab -d 'Keytab to log in to Vault with [default: $KRB5_KTNAME, else the user\'s Kerberos ticket cache]' -r
complete -c robot-credmon-storer -l vaulttokendir -d 'Directory of the per-service Vault token files vt_<id>-<service> [default: /tmp]' -r -F
complete -c robot-credmon-storer -l restore-before -d 'Re-store a credential whose stored Vault token has less than this left' -r
complete -c robot-credmon-storer -l credd -d 'Store into the credd of this name (as in the collector; repeatable) [default: the names in ROBOT_CREDMON_CREDDS, else the local credd]' -r
complete -c robot-credmon-storer -l web-open-command -d 'Command that opens the OIDC URL [default: xdg-open, none when $SSH_CLIENT is set]' -r
complete -c robot-credmon-storer -l oidc-timeout -d 'Give up waiting for the browser login after this long' -r
complete -c robot-credmon-storer -s v -l verbose -d 'Say what is done, and show condor_store_cred\'s output'
complete -c robot-credmon-storer -s d -l debug -d 'Debug output (implies -v)'
complete -c robot-credmon-storer -s h -l help -d 'Print help'
complete -c robot-credmon-storer -s V -l version -d 'Print version'
