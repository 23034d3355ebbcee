#!/bin/bash
# env.sh: records $PATH in .path and appends well-known variables to .env (once each); the listener loads
# .env into its environment at start.

varCheckList=(
    'LANG'
    'JAVA_HOME'
    'ANT_HOME'
    'M2_HOME'
    'ANDROID_HOME'
    'ANDROID_SDK_ROOT'
    'GRADLE_HOME'
    'NVM_BIN'
    'NVM_PATH'
    'LD_LIBRARY_PATH'
    'PERL5LIB'
    )

envContents=""
if [ -f ".env" ]; then
    envContents=$(<.env)
else
    : > .env
fi

writeVar()
{
    local name="$1"
    if [[ $'\n'"$envContents" != *$'\n'"${name}="* ]]; then
        local value="${!name}"
        if [ -n "$value" ]; then
            echo "${name}=${value}" >> .env
        fi
    fi
}

echo "$PATH" > .path

for var_name in "${varCheckList[@]}"
do
    writeVar "${var_name}"
done
