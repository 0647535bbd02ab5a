/* util/xml: element search by local name, text decoding, numbers, and
 * refusal of malformed input; cases shaped like S3 and Azure answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util/error.h"
#include "util/xml.h"

static const char list_v2[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>bucket</Name><Prefix>data/</Prefix><KeyCount>2</KeyCount>"
    "<IsTruncated>true</IsTruncated>"
    "<Contents><Key>data/00/a&amp;b&lt;&#x263a;&#65;</Key><Size>18446744073709551615</Size></Contents>"
    "<!-- a comment <Contents> inside -->"
    "<Contents><Key><![CDATA[data/01/<raw>]]></Key><Size> 42 </Size><Owner><ID>x</ID></Owner></Contents>"
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
    "</ListBucketResult>";

static void test_iterate_contents(void **state)
{
    (void)state;
    cr_xml doc = cr_xml_of(list_v2, strlen(list_v2)), item;
    cr_buf key = CR_BUF_INIT;
    uint64_t size = 0;

    assert_int_equal(cr_xml_next(&doc, "Contents", &item), 1);
    assert_int_equal(cr_xml_text(&item, "Key", &key), 1);
    assert_string_equal((char *)key.data, "data/00/a&b<\xe2\x98\xba" "A");
    assert_int_equal(cr_xml_u64(&item, "Size", &size), 1);
    assert_true(size == UINT64_MAX);

    assert_int_equal(cr_xml_next(&doc, "Contents", &item), 1);
    assert_int_equal(cr_xml_text(&item, "Key", &key), 1);
    assert_string_equal((char *)key.data, "data/01/<raw>");
    assert_int_equal(cr_xml_u64(&item, "Size", &size), 1);
    assert_true(size == 42);
    assert_int_equal(cr_xml_text(&item, "ID", &key), 1); /* any depth */
    assert_string_equal((char *)key.data, "x");

    assert_int_equal(cr_xml_next(&doc, "Contents", &item), 0);
    assert_int_equal(cr_xml_next(&doc, "Contents", &item), 0);

    cr_xml whole = cr_xml_of(list_v2, strlen(list_v2));
    assert_int_equal(cr_xml_text(&whole, "IsTruncated", &key), 1);
    assert_string_equal((char *)key.data, "true");
    assert_int_equal(cr_xml_text(&whole, "NextContinuationToken", &key), 1);
    assert_string_equal((char *)key.data, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    assert_int_equal(cr_xml_text(&whole, "Missing", &key), 0);
    cr_buf_free(&key);
}

static void test_prefix_attributes_empty(void **state)
{
    (void)state;
    static const char azure[] =
        "\xef\xbb\xbf<?xml version=\"1.0\"?><EnumerationResults ServiceEndpoint=\"http://x/a>b\" ContainerName='c'>"
        "<Blobs><Blob><Name>keys/k1</Name><Properties><Content-Length>7</Content-Length></Properties></Blob>"
        "<Blob><Name>keys/k2</Name><Properties><Content-Length>0</Content-Length></Properties></Blob></Blobs>"
        "<NextMarker /></EnumerationResults>";
    cr_xml doc = cr_xml_of(azure, strlen(azure)), blob, marker;
    cr_buf t = CR_BUF_INIT;
    int n = 0;
    while (cr_xml_next(&doc, "Blob", &blob) == 1) n++;
    assert_int_equal(n, 2);
    cr_xml whole = cr_xml_of(azure, strlen(azure));
    assert_int_equal(cr_xml_next(&whole, "NextMarker", &marker), 1);
    assert_true(marker.p == marker.end);
    assert_int_equal(cr_xml_text(&whole, "NextMarker", &t), 0); /* cursor moved past it */

    static const char prefixed[] = "<s3:Error><s3:Code>NoSuchKey</s3:Code><Message>gone</Message></s3:Error>";
    cr_xml e = cr_xml_of(prefixed, strlen(prefixed));
    assert_int_equal(cr_xml_text(&e, "Code", &t), 1);
    assert_string_equal((char *)t.data, "NoSuchKey");
    cr_buf_free(&t);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad_next[] = {
        "<Contents><Key>x</Key>",    /* not closed */
        "<Contents",                 /* tag not closed */
        "<!-- never ends",           /* comment */
        "<Contents attr=\"x>",       /* quote not closed */
        "<>",                        /* no name */
    };
    cr_buf t = CR_BUF_INIT;
    for (size_t i = 0; i < sizeof bad_next / sizeof bad_next[0]; i++) {
        cr_xml d = cr_xml_of(bad_next[i], strlen(bad_next[i])), in;
        assert_int_equal(cr_xml_next(&d, "Contents", &in), CR_E_FORMAT);
        cr_error_clear();
    }
    static const char *const bad_text[] = {"<K>&bogus;</K>", "<K>&#0;</K>", "<K>&#xD800;</K>", "<K>&#x110000;</K>",
                                           "<K>a & b</K>",   "<K>&#;</K>"};
    for (size_t i = 0; i < sizeof bad_text / sizeof bad_text[0]; i++) {
        cr_xml d = cr_xml_of(bad_text[i], strlen(bad_text[i]));
        assert_int_equal(cr_xml_text(&d, "K", &t), CR_E_FORMAT);
        cr_error_clear();
    }
    static const char *const bad_num[] = {"<S>18446744073709551616</S>", "<S>-1</S>", "<S></S>", "<S>1 2</S>"};
    uint64_t v;
    for (size_t i = 0; i < sizeof bad_num / sizeof bad_num[0]; i++) {
        cr_xml d = cr_xml_of(bad_num[i], strlen(bad_num[i]));
        assert_int_equal(cr_xml_u64(&d, "S", &v), CR_E_FORMAT);
        cr_error_clear();
    }
    cr_buf_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iterate_contents),
        cmocka_unit_test(test_prefix_attributes_empty),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
